// OpenID Connect through the unmodified Extra Horizon SDK: a provider configured and enabled, a
// user logging in through it (the account made on the first login), the record of logins, a
// password account linked with a presence token, and an administrator unlinking a user. The
// provider is the Rust suite's OpenID provider on loopback (tests/src/oidc.rs), which issues
// RS256-signed ID tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IllegalStateError, OidcInvalidAuthorizationCodeError } from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

const issuer = process.env.VIGIL_TEST_OIDC_ISSUER;
const clientSecret = process.env.VIGIL_TEST_OIDC_CLIENT_SECRET;

// Follows an authentication URL as a browser would, signed in at the provider as `email`, and
// answers the authorization code the provider redirects back with.
async function codeFor(authenticationUrl, email) {
  const response = await fetch(`${authenticationUrl}&login_hint=${encodeURIComponent(email)}`, { redirect: 'manual' });
  assert.equal(response.status, 303);
  return new URL(response.headers.get('location')).searchParams.get('code');
}

test('a provider is configured and users log in, link and are unlinked through it', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const provider = await admin.auth.oidc.providers.create({
    name: 'sdk-idp',
    description: 'The suite\'s OpenID provider',
    clientId: process.env.VIGIL_TEST_OIDC_CLIENT_ID,
    clientSecret,
    issuerId: issuer,
    authorizationEndpoint: `${issuer}/authorize`,
    tokenEndpoint: `${issuer}/token`,
    userinfoEndpoint: `${issuer}/userinfo`,
    redirectUri: 'https://app.example.com/callback',
  });
  assert.equal(provider.enabled, false);
  assert.equal(provider.clientSecretHint, clientSecret.slice(-4));
  assert.ok(provider.creationTimestamp instanceof Date);

  const anonymous = client();
  await assert.rejects(anonymous.auth.generateOidcAuthenticationUrl('sdk-idp'), IllegalStateError);
  assert.deepEqual(await admin.auth.oidc.providers.enable(provider.id), { affectedRecords: 1 });
  const { authenticationUrl } = await anonymous.auth.generateOidcAuthenticationUrl('sdk-idp', { state: 'opaque' });
  assert.match(authenticationUrl, /response_type=code/);
  assert.match(authenticationUrl, /state=opaque/);

  const oidcUser = client();
  const code = await codeFor(authenticationUrl, 'oidc-sdk@example.com');
  await oidcUser.auth.authenticateWithOidc('sdk-idp', { authorizationCode: code });
  const me = await oidcUser.users.me();
  assert.equal(me.email, 'oidc-sdk@example.com');
  await assert.rejects(
    client().auth.authenticateWithOidc('sdk-idp', { authorizationCode: code }),
    OidcInvalidAuthorizationCodeError,
  );
  const attempts = await admin.auth.oidc.loginAttempts.find();
  const success = attempts.data.find((attempt) => attempt.userId === me.id);
  assert.equal(success.status, 'success');
  assert.equal(success.providerName, 'sdk-idp');
  assert.ok(attempts.data.some((attempt) => attempt.status === 'failed' && attempt.error.code === 139));
  const [listed] = (await admin.auth.oidc.providers.find()).data.filter((p) => p.id === provider.id);
  assert.equal(listed.enabled, true);

  // A password account links itself: from then on it logs in through the provider only.
  await anonymous.users.createAccount({
    firstName: 'Link', lastName: 'Ed', email: 'linked-sdk@example.com', password: 'link password', language: 'EN', activationMode: 'manual',
  });
  const linking = await loggedIn('linked-sdk@example.com', 'link password');
  const presence = await linking.auth.confirmPresence({ password: 'link password' });
  const { authenticationUrl: again } = await anonymous.auth.generateOidcAuthenticationUrl('sdk-idp');
  assert.deepEqual(
    await linking.auth.oidc.linkUserToOidcProvider('sdk-idp', {
      presenceToken: presence.token,
      authorizationCode: await codeFor(again, 'linked-sdk-at-idp@example.com'),
    }),
    { affectedRecords: 1 },
  );
  await assert.rejects(loggedIn('linked-sdk@example.com', 'link password'));

  assert.deepEqual(await admin.auth.oidc.unlinkUserFromOidc(me.id), { affectedRecords: 1 });
  await assert.rejects(admin.auth.oidc.providers.remove(provider.id), IllegalStateError);
});
