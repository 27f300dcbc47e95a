// Accounts and global roles through the unmodified Extra Horizon SDK: registration, profile and
// password changes, roles and permissions granting and revoking access, and deleting an account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EmailUsedError,
  InvalidGrantError,
  NoPermissionError,
  PasswordError,
  RefreshTokenUnknownError,
  rqlBuilder,
} from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

async function register(email, password) {
  const exh = client();
  return exh.users.createAccount({
    firstName: 'Pat',
    lastName: 'Ient',
    email,
    password,
    phoneNumber: '+32 470 12 34 56',
    language: 'EN',
    timeZone: 'Europe/Brussels',
    activationMode: 'manual',
  });
}

test('an account is registered, updated, re-passworded and deleted', async () => {
  const anonymous = client();
  assert.deepEqual(await anonymous.users.isEmailAvailable('pat@example.com'), { emailAvailable: true });
  const user = await register('pat@example.com', 'first password');
  assert.equal(user.email, 'pat@example.com');
  assert.equal(user.activation, false);
  assert.deepEqual(await anonymous.users.isEmailAvailable('pat@example.com'), { emailAvailable: false });
  await assert.rejects(register('pat@example.com', 'first password'), EmailUsedError);

  const pat = await loggedIn('pat@example.com', 'first password');
  const updated = await pat.users.update(user.id, { firstName: 'Patricia', timeZone: 'Europe/Paris' });
  assert.equal(updated.firstName, 'Patricia');
  assert.equal(updated.timeZone, 'Europe/Paris');
  assert.equal(await pat.users.confirmPassword({ password: 'first password' }), true);
  await assert.rejects(pat.users.confirmPassword({ password: 'not it at all' }), PasswordError);
  await assert.rejects(pat.users.changePassword({ oldPassword: 'not it at all', newPassword: 'second password' }), PasswordError);
  assert.equal(await pat.users.changePassword({ oldPassword: 'first password', newPassword: 'second password' }), true);
  const again = await loggedIn('pat@example.com', 'second password');
  assert.equal((await again.users.me()).firstName, 'Patricia');

  assert.deepEqual(await pat.users.remove(user.id), { affectedRecords: 1 });
  // The SDK meets ACCESS_TOKEN_UNKNOWN, tries to refresh, and the refresh token is dead too.
  await assert.rejects(again.users.me(), (error) => {
    assert.ok(error instanceof InvalidGrantError, error.constructor.name);
    assert.ok(error.exhError instanceof RefreshTokenUnknownError, error.exhError?.constructor.name);
    return true;
  });
  assert.deepEqual(await anonymous.users.isEmailAvailable('pat@example.com'), { emailAvailable: true });
});

test('roles and permissions grant and revoke access', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const user = await register('viewer@example.com', 'viewer password');
  const viewer = await loggedIn('viewer@example.com', 'viewer password');
  const adminId = (await admin.users.me()).id;
  await assert.rejects(viewer.users.findById(adminId), NoPermissionError);
  await assert.rejects(viewer.users.globalRoles.find(), NoPermissionError);

  const permissions = await admin.users.globalRoles.getPermissions();
  assert.ok(permissions.data.some((p) => p.name === 'VIEW_USER'));
  const role = await admin.users.globalRoles.create({ name: 'Viewer', description: 'Reads users' });
  assert.equal(role.name, 'Viewer');
  const byId = rqlBuilder().eq('id', role.id).build();
  assert.deepEqual(await admin.users.globalRoles.addPermissions(byId, { permissions: ['VIEW_USER', 'VIEW_ROLE'] }), { affectedRecords: 1 });
  const toViewer = rqlBuilder().eq('id', user.id).build();
  assert.deepEqual(await admin.users.globalRoles.addToUsers(toViewer, { roles: [role.id] }), { affectedRecords: 1 });

  assert.equal((await viewer.users.findById(adminId)).email, adminEmail);
  const found = await viewer.users.globalRoles.findByName('Viewer');
  assert.deepEqual(found.permissions.map((p) => p.name), ['VIEW_ROLE', 'VIEW_USER']);
  const renamed = await admin.users.globalRoles.update(role.id, { name: 'Reader' });
  assert.equal(renamed.name, 'Reader');

  await admin.users.globalRoles.removePermissions(byId, { permissions: ['VIEW_USER'] });
  await assert.rejects(viewer.users.findById(adminId), NoPermissionError);
  await admin.users.globalRoles.addPermissions(byId, { permissions: ['VIEW_USER'] });
  assert.equal((await viewer.users.findById(adminId)).id, adminId);
  await admin.users.globalRoles.removeFromUser(toViewer, { roles: [role.id] });
  await assert.rejects(viewer.users.findById(adminId), NoPermissionError);
  assert.deepEqual((await viewer.users.me()).roles, []);

  assert.deepEqual(await admin.users.globalRoles.remove(byId), { affectedRecords: 1 });
  assert.equal(await admin.users.globalRoles.findById(role.id), undefined);
});
