// Multi-factor authentication through the unmodified Extra Horizon SDK: presence, a TOTP method
// verified with a code computed here (RFC 6238), recovery codes, and logins that must pass the
// second factor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidMfaCodeError,
  MfaRequiredError,
  NotEnoughMfaMethodsError,
} from '@extrahorizon/javascript-sdk';
import { base32Decode, totp, totpAt } from './totp.mjs';
import { client, loggedIn } from './vigil.mjs';

test('the TOTP computed here is RFC 6238', () => {
  // RFC 6238 Appendix B, SHA-1: T = 59 s and T = 1111111109 s.
  const key = Buffer.from('12345678901234567890');
  assert.equal(totpAt(key, 59, 8), '94287082');
  assert.equal(totpAt(key, 1111111109, 8), '07081804');
  assert.deepEqual(base32Decode('GEZDGNBV'), Buffer.from('12345'));
});

test('MFA is set up with a TOTP code, and logins then need the second factor', async () => {
  const email = 'mfa-user@example.com';
  const password = 'mfa user password';
  await client().users.createAccount({
    firstName: 'Mfa', lastName: 'User', email, password,
    language: 'EN', timeZone: 'Europe/Brussels', activationMode: 'manual',
  });
  const user = await loggedIn(email, password);
  const { id } = await user.users.me();

  const presence = await user.auth.confirmPresence({ password });
  assert.equal(presence.token.length, 40);
  assert.ok(presence.creationTimestamp instanceof Date);
  const presenceToken = presence.token;
  const recovery = await user.auth.users.addMfaMethod(id, { type: 'recoveryCodes', presenceToken });
  assert.equal(recovery.codes.length, 10);
  const phone = await user.auth.users.addMfaMethod(id, { type: 'totp', name: 'Phone', presenceToken });
  assert.equal(phone.verified, false);
  assert.match(phone.secret, /^[A-Z2-7]+$/);

  await assert.rejects(user.auth.users.enableMfa(id, { presenceToken }), NotEnoughMfaMethodsError);
  const verified = await user.auth.users.confirmMfaMethodVerification(id, phone.id, { presenceToken, code: totp(phone.secret) });
  assert.equal(typeof verified.description, 'string');
  assert.deepEqual(await user.auth.users.enableMfa(id, { presenceToken }), { affectedRecords: 1 });
  const settings = await user.auth.users.getMfaSetting(id);
  assert.equal(settings.enabled, true);
  assert.ok(settings.updateTimestamp instanceof Date);
  assert.deepEqual(settings.methods.map((m) => [m.type, m.verified]), [['recoveryCodes', false], ['totp', true]]);

  // A password login now stops at the second factor; a TOTP code of the next step finishes it.
  const challenged = async () => {
    const exh = client();
    let mfa;
    await assert.rejects(exh.auth.authenticate({ username: email, password }), (error) => {
      mfa = error.mfa;
      return error instanceof MfaRequiredError;
    });
    return { exh, mfa };
  };
  const first = await challenged();
  assert.equal(first.mfa.tokenExpiresIn, 600000);
  assert.deepEqual(first.mfa.methods.map((m) => m.id).sort(), [phone.id, recovery.id].sort());
  await assert.rejects(
    first.exh.auth.confirmMfa({ token: first.mfa.token, methodId: recovery.id, code: 'NOT-A-CODE' }),
    (error) => error.exhError instanceof InvalidMfaCodeError,
  );
  // The wrong code makes the next attempt wait a second.
  await new Promise((resolve) => { setTimeout(resolve, 1100); });
  await first.exh.auth.confirmMfa({ token: first.mfa.token, methodId: phone.id, code: totp(phone.secret, 1) });
  assert.equal((await first.exh.users.me()).email, email);

  // A recovery code works too, once.
  const second = await challenged();
  await second.exh.auth.confirmMfa({ token: second.mfa.token, methodId: recovery.id, code: recovery.codes[0] });
  assert.equal((await second.exh.users.me()).id, id);

  await user.auth.users.disableMfa(id, { presenceToken });
  await loggedIn(email, password);
});
