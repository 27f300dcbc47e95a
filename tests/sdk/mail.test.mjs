// Activation and password reset by mail through the unmodified Extra Horizon SDK, with the mails
// received on a real SMTP server (./smtp.mjs) that Vigil is configured to send to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActivationUnknownError,
  InvalidGrantError,
  RefreshTokenUnknownError,
} from '@extrahorizon/javascript-sdk';
import { codeIn, smtpServer } from './smtp.mjs';
import { client, loggedIn } from './vigil.mjs';

const smtp = smtpServer(Number(process.env.VIGIL_TEST_SMTP_PORT));

before(() => smtp.listen());
after(() => smtp.close());

test('register, activate with the mailed code, reset the password with the mailed code', async () => {
  const address = 'mailed@example.com';
  const anonymous = client();
  const user = await anonymous.users.createAccount({
    firstName: 'Mai', lastName: 'Led', email: address, password: 'first password', language: 'EN',
  });
  assert.equal(user.activation, false);
  const activation = await smtp.next(address);
  assert.match(activation.data, /Activate your account/);

  const mai = await loggedIn(address, 'first password');
  await assert.rejects(mai.users.validateEmailActivation({ hash: '0'.repeat(40) }), ActivationUnknownError);
  assert.equal(await mai.users.validateEmailActivation({ hash: codeIn(activation) }), true);
  assert.equal((await mai.users.me()).activation, true);

  assert.equal(await anonymous.users.requestPasswordReset(address), true);
  const reset = await smtp.next(address);
  assert.match(reset.data, /Reset your password/);
  assert.equal(await mai.users.validatePasswordReset({ hash: codeIn(reset), newPassword: 'second password' }), true);
  // Every login ended with the reset: the SDK's refresh attempt fails too.
  await assert.rejects(mai.users.me(), (error) => {
    assert.ok(error instanceof InvalidGrantError, error.constructor.name);
    assert.ok(error.exhError instanceof RefreshTokenUnknownError, error.exhError?.constructor.name);
    return true;
  });
  const again = await loggedIn(address, 'second password');
  assert.equal((await again.users.me()).id, user.id);
});
