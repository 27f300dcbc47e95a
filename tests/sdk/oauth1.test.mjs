// OAuth1 through the unmodified Extra Horizon SDK: an oauth1 application, a client that logs in
// with email and password and signs every request (RQL queries included) with HMAC-SHA1, single
// sign-on into another application, MFA on an OAuth1 login, and token listing and revocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createOAuth1Client,
  MfaRequiredError,
  OauthSignatureError,
  OauthTokenError,
  ResourceUnknownError,
  rqlBuilder,
} from '@extrahorizon/javascript-sdk';
import { totp } from './totp.mjs';
import { adminEmail, adminPassword, client, host, loggedIn } from './vigil.mjs';

test('an OAuth1 client logs in, signs its requests, and its token can be revoked', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const app = await admin.auth.applications.create({ type: 'oauth1', name: 'CLI', description: 'Command line' });
  const { consumerKey, consumerSecret } = await admin.auth.applications.createVersion(app.id, { name: '1.0' });
  assert.equal(consumerKey.length, 40);

  const email = 'oauth1-user@example.com';
  const password = 'oauth1 user password';
  await client().users.createAccount({
    firstName: 'Oauth', lastName: 'One', email, password,
    language: 'EN', timeZone: 'Europe/Brussels', activationMode: 'manual',
  });

  const exh = createOAuth1Client({ host, consumerKey, consumerSecret });
  const tokenData = await exh.auth.authenticate({ email, password });
  assert.equal(tokenData.token.length, 40);
  assert.equal(tokenData.tokenSecret.length, 40);
  const me = await exh.users.me();
  assert.equal(me.email, email);
  // A signed request with RQL in its query string (by the administrator, who sees everyone).
  const adminOAuth1 = createOAuth1Client({ host, consumerKey, consumerSecret });
  await adminOAuth1.auth.authenticate({ email: adminEmail, password: adminPassword });
  const rql = rqlBuilder().select(['id', 'email']).eq('email', email).build();
  const found = await adminOAuth1.users.find({ rql });
  assert.deepEqual(found.data.map((u) => u.id), [me.id], 'users.find');
  const tokens = await exh.auth.oauth1.getTokens();
  assert.deepEqual(tokens.data.map((t) => t.id), [tokenData.id], 'oauth1 tokens');

  // The same token with a wrong consumer secret is refused.
  const forged = createOAuth1Client({ host, consumerKey, consumerSecret: 'f'.repeat(40) });
  await assert.rejects(
    forged.auth.authenticate({ token: tokenData.token, tokenSecret: tokenData.tokenSecret }),
    OauthSignatureError,
  );

  // Single sign-on into another OAuth1 application, once.
  const web = await admin.auth.applications.create({ type: 'oauth1', name: 'Web', description: 'Web app' });
  const webCredentials = await admin.auth.applications.createVersion(web.id, { name: '1.0' });
  const sso = await exh.auth.oauth1.generateSsoToken();
  assert.equal(sso.userId, me.id);
  assert.ok(sso.expiryTimestamp instanceof Date);
  const webApp = createOAuth1Client({ host, ...webCredentials });
  const handed = await webApp.auth.oauth1.consumeSsoToken(sso.ssoToken);
  assert.equal(handed.userId, me.id);
  assert.equal(handed.applicationId, web.id);
  const webUser = createOAuth1Client({ host, ...webCredentials, token: handed.token, tokenSecret: handed.tokenSecret });
  assert.equal((await webUser.users.me()).id, me.id);
  await assert.rejects(webApp.auth.oauth1.consumeSsoToken(sso.ssoToken), ResourceUnknownError);

  assert.deepEqual(await exh.auth.oauth1.removeToken(tokenData.id), { affectedRecords: 1 });
  await assert.rejects(exh.users.me(), OauthTokenError);
});

test('an OAuth1 login of a user with MFA enabled finishes with the second factor', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const app = await admin.auth.applications.create({ type: 'oauth1', name: 'CLI 2', description: 'Command line' });
  const { consumerKey, consumerSecret } = await admin.auth.applications.createVersion(app.id, { name: '1.0' });
  const email = 'oauth1-mfa@example.com';
  const password = 'oauth1 mfa password';
  await client().users.createAccount({
    firstName: 'Oauth', lastName: 'Mfa', email, password,
    language: 'EN', timeZone: 'Europe/Brussels', activationMode: 'manual',
  });
  const user = await loggedIn(email, password);
  const { id } = await user.users.me();
  const presenceToken = (await user.auth.confirmPresence({ password })).token;
  const recovery = await user.auth.users.addMfaMethod(id, { type: 'recoveryCodes', presenceToken });
  const phone = await user.auth.users.addMfaMethod(id, { type: 'totp', presenceToken });
  await user.auth.users.confirmMfaMethodVerification(id, phone.id, { presenceToken, code: totp(phone.secret) });
  await user.auth.users.enableMfa(id, { presenceToken });

  const exh = createOAuth1Client({ host, consumerKey, consumerSecret });
  let mfa;
  await assert.rejects(exh.auth.authenticate({ email, password }), (error) => {
    ({ mfa } = error);
    return error instanceof MfaRequiredError && error.status === 403;
  });
  await exh.auth.confirmMfa({ token: mfa.token, methodId: recovery.id, code: recovery.codes[1] });
  assert.equal((await exh.users.me()).id, id);
});
