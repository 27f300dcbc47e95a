// A group through the unmodified Extra Horizon SDK: group roles with permissions, a physician
// enlisted as staff with a group role, a patient, and the three user views each of them gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NoPermissionError, ResourceAlreadyExistsError, rqlBuilder } from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

const groupId = '5e9f00000000000000000c01';

async function account(email) {
  const user = await client().users.createAccount({
    firstName: 'Group',
    lastName: 'Member',
    email,
    password: 'group member password',
    language: 'EN',
    timeZone: 'Europe/Brussels',
    activationMode: 'manual',
  });
  return { user, exh: await loggedIn(email, 'group member password') };
}

test('a group with group roles, staff and patients, and the three user views', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const physician = await account('physician@example.com');
  const patient = await account('group.patient@example.com');
  const stranger = await account('stranger@example.com');

  const role = await admin.users.groupRoles.add(groupId, { name: 'Physician', description: 'Treats the patients' });
  assert.equal(role.groupId, groupId);
  assert.deepEqual(
    await admin.users.groupRoles.addPermissions(groupId, { permissions: ['REMOVE_PATIENT'] }, {
      rql: rqlBuilder().eq('id', role.id).build(),
    }),
    { affectedRecords: 1 },
  );
  const byId = rqlBuilder().eq('id', physician.user.id).build();
  assert.deepEqual(await admin.users.groupRoles.addUsersToStaff({ groups: [groupId] }, { rql: byId }), { affectedRecords: 1 });
  assert.deepEqual(await admin.users.groupRoles.assignToStaff(groupId, { roles: [role.id] }, { rql: byId }), { affectedRecords: 1 });
  assert.deepEqual(await admin.users.addPatientEnlistment(patient.user.id, { groupId }), { affectedRecords: 1 });
  await assert.rejects(admin.users.addPatientEnlistment(patient.user.id, { groupId }), ResourceAlreadyExistsError);

  // The full view: the physician's own, with the group role and its permission.
  const me = await physician.exh.users.me();
  assert.equal(me.staffEnlistments[0].groupId, groupId);
  assert.equal(me.staffEnlistments[0].roles[0].name, 'Physician');
  assert.deepEqual(me.staffEnlistments[0].roles[0].permissions, ['REMOVE_PATIENT']);
  assert.ok(me.roles !== undefined);
  assert.deepEqual(await physician.exh.users.groupRoles.findByName(groupId, 'Physician').then((r) => r.id), role.id);

  // The patient view: what the physician sees of the patient.
  const seenPatient = await physician.exh.users.findById(patient.user.id);
  assert.equal(seenPatient.email, 'group.patient@example.com');
  assert.equal(seenPatient.patientEnlistments[0].groupId, groupId);
  assert.equal(seenPatient.patientEnlistments[0].expired, false);
  assert.equal(seenPatient.roles, undefined);
  assert.equal(seenPatient.staffEnlistments, undefined);
  const patients = await physician.exh.users.patients();
  assert.deepEqual(patients.data.map((p) => p.id), [patient.user.id]);

  // The staff view: what the patient sees of the physician.
  const seenPhysician = await patient.exh.users.findById(physician.user.id);
  assert.equal(seenPhysician.staffEnlistments[0].groupId, groupId);
  assert.equal(seenPhysician.roles, undefined);
  assert.equal(seenPhysician.patientEnlistments, undefined);
  assert.equal(seenPhysician.language, undefined);
  const staff = await physician.exh.users.staff();
  assert.deepEqual(staff.data.map((s) => s.id), [physician.user.id]);

  // Outside the group, neither is visible.
  await assert.rejects(stranger.exh.users.findById(patient.user.id), NoPermissionError);
  assert.equal((await stranger.exh.users.patients()).data.length, 0);
  await assert.rejects(stranger.exh.users.groupRoles.get(groupId), NoPermissionError);

  // The physician's group permission removes the patient from the group; then the patient is gone
  // from the physician's sight.
  assert.deepEqual(await physician.exh.users.removePatientEnlistment(patient.user.id, groupId), { affectedRecords: 1 });
  await assert.rejects(physician.exh.users.findById(patient.user.id), NoPermissionError);
  assert.deepEqual(
    await admin.users.groupRoles.removeUsersFromStaff(byId, { groups: [groupId] }),
    { affectedRecords: 1 },
  );
  assert.deepEqual((await physician.exh.users.me()).staffEnlistments, []);
});
