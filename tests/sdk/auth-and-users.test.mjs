// The first vertical slice through the unmodified Extra Horizon SDK: OAuth2 password and refresh
// grants, the current user, user lists with RQL, and the SDK's typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthenticationError,
  InvalidGrantError,
  LoginTimeoutError,
  RefreshTokenUnknownError,
  UserNotAuthenticatedError,
  rqlBuilder,
} from '@extrahorizon/javascript-sdk';
import { adminEmail as email, adminPassword as password, client } from './vigil.mjs';

async function loggedIn(options = {}) {
  const exh = client(options);
  const tokens = await exh.auth.authenticate({ username: email, password });
  return { exh, tokens };
}

test('every mounted service reports healthy', async () => {
  const exh = client();
  assert.equal(await exh.users.health(), true);
  assert.equal(await exh.auth.health(), true);
});

test('the administrator logs in with the password grant and reads themselves', async () => {
  const fresh = [];
  const { exh, tokens } = await loggedIn({ freshTokensCallback: (t) => fresh.push(t) });
  assert.match(tokens.accessToken, /^[0-9a-f]{40}$/);
  assert.match(tokens.refreshToken, /^[0-9a-f]{40}$/);
  assert.equal(fresh.length, 1);

  const me = await exh.users.me();
  assert.equal(me.email, email);
  assert.equal(me.activation, true);
  assert.ok(me.creationTimestamp instanceof Date);
  assert.ok(me.roles[0].permissions.some((p) => p.name === 'VIEW_USER'));
  assert.equal(me.id, tokens.userId);
});

test('users are listed and found with RQL', async () => {
  const { exh, tokens } = await loggedIn();
  const rql = rqlBuilder().eq('email', email).select(['id', 'email']).sort('-creation_timestamp').limit(10).build();
  const page = await exh.users.find({ rql });
  assert.equal(page.page.total, 1);
  assert.equal(page.page.limit, 10);
  assert.deepEqual(page.data, [{ id: tokens.userId, email }]);

  const byEmail = await exh.users.findByEmail(email);
  assert.equal(byEmail.id, tokens.userId);
  const byId = await exh.users.findById(tokens.userId);
  assert.equal(byId.email, email);
  const everyone = await exh.users.findAll();
  assert.ok(everyone.some((user) => user.id === tokens.userId));
  const nobody = await exh.users.find({ rql: rqlBuilder().eq('email', 'nobody@example.com').build() });
  assert.deepEqual(nobody.data, []);
});

test('refreshing rotates the tokens and spends the old refresh token', async () => {
  const { exh, tokens } = await loggedIn();
  const refreshed = await exh.auth.authenticate({ refreshToken: tokens.refreshToken });
  assert.notEqual(refreshed.refreshToken, tokens.refreshToken);
  assert.notEqual(refreshed.accessToken, tokens.accessToken);
  assert.equal((await exh.users.me()).email, email);

  const replay = client();
  await assert.rejects(replay.auth.authenticate({ refreshToken: tokens.refreshToken }), (error) => {
    assert.ok(error instanceof InvalidGrantError, error.constructor.name);
    assert.ok(error.exhError instanceof RefreshTokenUnknownError, error.exhError?.constructor.name);
    return true;
  });
});

test('a wrong password gets the typed login errors, and a hasty retry the throttling error', async () => {
  const exh = client();
  const address = 'forgetful@example.com';
  await exh.users.createAccount({
    firstName: 'For', lastName: 'Getful', email: address, password: 'the real password', language: 'EN', activationMode: 'manual',
  });
  await assert.rejects(exh.auth.authenticate({ username: address, password: 'not the password' }), (error) => {
    assert.ok(error instanceof InvalidGrantError, error.constructor.name);
    assert.ok(error.exhError instanceof AuthenticationError, error.exhError?.constructor.name);
    return true;
  });
  // Within a second of a failure even the right password is refused; known or unknown address alike.
  for (const username of [address, 'nobody@example.com']) {
    if (username === 'nobody@example.com') {
      await assert.rejects(exh.auth.authenticate({ username, password }), InvalidGrantError);
    }
    await assert.rejects(exh.auth.authenticate({ username, password: 'the real password' }), (error) => {
      assert.ok(error.exhError instanceof LoginTimeoutError, error.exhError?.constructor.name);
      return true;
    });
  }
});

test('a request without a token gets the typed authentication error', async () => {
  const exh = client();
  await assert.rejects(exh.users.me(), UserNotAuthenticatedError);
  await assert.rejects(exh.users.find(), UserNotAuthenticatedError);
});
