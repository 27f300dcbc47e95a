// The OAuth2 authorization-code flow through the unmodified Extra Horizon SDK: a logged-in user
// authorizes a third-party public client, which logs in with the code as that user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthorizationUnknownError, createOAuth2Client } from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, host, loggedIn } from './vigil.mjs';

test('a third-party client logs in with an authorization code, once', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const app = await admin.auth.applications.create({
    type: 'oauth2',
    name: 'Third-party viewer',
    description: 'Reads measurements',
    redirectUris: ['https://viewer.example.com/callback'],
    confidential: false,
  });
  const { clientId } = await admin.auth.applications.createVersion(app.id, { name: '1.0' });

  await client().users.createAccount({
    firstName: 'Auth', lastName: 'Orizer', email: 'authorizer@example.com', password: 'authorizer password',
    language: 'EN', timeZone: 'Europe/Brussels', activationMode: 'manual',
  });
  const user = await loggedIn('authorizer@example.com', 'authorizer password');
  const authorization = await user.auth.oauth2.authorizations.create({ responseType: 'code', clientId, state: 'abc' });
  assert.equal(authorization.redirectUri, 'https://viewer.example.com/callback');
  assert.equal(authorization.state, 'abc');
  assert.equal((await user.auth.oauth2.authorizations.find()).data.length, 1);

  const thirdParty = createOAuth2Client({ host, clientId });
  await thirdParty.auth.authenticate({ code: authorization.authorizationCode });
  assert.equal((await thirdParty.users.me()).email, 'authorizer@example.com');
  await assert.rejects(
    createOAuth2Client({ host, clientId }).auth.authenticate({ code: authorization.authorizationCode }),
    (error) => error.exhError instanceof AuthorizationUnknownError || error instanceof AuthorizationUnknownError,
  );
  assert.equal((await user.auth.oauth2.authorizations.find()).data.length, 0);
});
