// Documents through the unmodified Extra Horizon SDK: a blood-pressure schema (new → analyzed →
// reviewed), an automatic transition with a document condition, a manual one restricted by a
// transition permission, a patient and a physician (staff in the patient's group) under the default
// modes, array fields, deleteFields and RQL (paging with page.total, select, multi-field sort, in,
// like, contains with a condition); a delay that locks a document until its step resumes; comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IllegalArgumentError,
  LockedDocumentError,
  NoPermissionError,
  ResourceUnknownError,
  rqlBuilder,
} from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

const groupId = '5e9f00000000000000000d01';
const schemaName = 'sdk-bp-documents';

async function account(email) {
  const user = await client().users.createAccount({
    firstName: 'Data',
    lastName: 'User',
    email,
    password: 'data user password',
    language: 'EN',
    timeZone: 'Europe/Brussels',
    activationMode: 'manual',
  });
  return { user, exh: await loggedIn(email, 'data user password') };
}

test('blood pressure documents through their workflow, seen by whom they should be', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const { data } = admin;
  await data.schemas.create({ name: schemaName, description: 'Blood pressure' });
  await data.properties.create(schemaName, { name: 'systolic', configuration: { type: 'number', minimum: 0 } });
  await data.properties.create(schemaName, { name: 'diastolic', configuration: { type: 'number', minimum: 0 } });
  await data.properties.create(schemaName, { name: 'comment', configuration: { type: 'string' } });
  await data.properties.create(schemaName, { name: 'tags', configuration: { type: 'array', items: { type: 'string' } } });
  await data.properties.create(schemaName, {
    name: 'readings',
    configuration: { type: 'array', items: { type: 'object', properties: { value: { type: 'number' } } } },
  });
  await data.statuses.create(schemaName, { name: 'analyzed' });
  await data.statuses.create(schemaName, { name: 'reviewed' });
  await data.transitions.updateCreation(schemaName, {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'linkCreator' }, { type: 'linkEnlistedGroups' }],
  });
  await data.transitions.create(schemaName, {
    name: 'analyze',
    type: 'automatic',
    fromStatuses: ['new'],
    toStatus: 'analyzed',
    conditions: [{
      type: 'document',
      configuration: { type: 'object', properties: { data: { type: 'object', required: ['systolic'] } } },
    }],
  });
  await data.transitions.create(schemaName, {
    name: 'review',
    type: 'manual',
    fromStatuses: ['analyzed'],
    toStatus: 'reviewed',
    actions: [{ type: 'set', field: 'comment', value: 'reviewed' }],
  });
  // Only staff may review: the patient's update mode is taken away.
  await data.schemas.update(schemaName, { updateMode: ['linkedGroupStaff'] });

  const patient = await account('bp.patient@example.com');
  const physician = await account('bp.physician@example.com');
  const stranger = await account('bp.stranger@example.com');
  await admin.users.addPatientEnlistment(patient.user.id, { groupId });
  await admin.users.groupRoles.addUsersToStaff({ groups: [groupId] }, { rql: rqlBuilder().eq('id', physician.user.id).build() });

  // The patient measures; the automatic transition analyses what has a systolic value.
  const first = await patient.exh.data.documents.create(schemaName, {
    systolic: 150, diastolic: 95, tags: ['morning', 'rest'], readings: [{ value: 148 }, { value: 152 }],
  }, { gzip: true });
  assert.equal(first.status, 'analyzed');
  assert.deepEqual(first.userIds, [patient.user.id]);
  assert.deepEqual(first.groupIds, [groupId]);
  assert.ok(first.creationTimestamp instanceof Date);
  const second = await patient.exh.data.documents.create(schemaName, { systolic: 118, diastolic: 76, tags: ['evening'], readings: [{ value: 118 }] });
  const third = await patient.exh.data.documents.create(schemaName, { diastolic: 70, comment: 'Forgot the systolic value' });
  assert.equal(third.status, 'new');

  // Who sees what.
  const mine = await patient.exh.data.documents.find(schemaName);
  assert.equal(mine.page.total, 3);
  assert.equal((await physician.exh.data.documents.find(schemaName)).page.total, 3);
  const nothing = await stranger.exh.data.documents.find(schemaName);
  assert.equal(nothing.page.total, 0);
  assert.deepEqual(nothing.data, []);
  assert.equal(await stranger.exh.data.documents.findById(schemaName, first.id), undefined);

  // RQL.
  const ids = (result) => result.data.map((d) => d.id);
  const find = (rql) => physician.exh.data.documents.find(schemaName, { rql });
  const paged = await find(rqlBuilder().sort(['-data.diastolic']).limit(2, 1).build());
  assert.deepEqual(ids(paged), [second.id, third.id]);
  assert.equal(paged.page.total, 3);
  assert.equal(paged.page.offset, 1);
  const selected = await find(rqlBuilder().select(['id', 'data.systolic']).eq('id', first.id).build());
  assert.deepEqual(selected.data, [{ id: first.id, data: { systolic: 150 } }]);
  const sorted = await find(rqlBuilder().sort(['status', '-data.systolic']).build());
  assert.deepEqual(ids(sorted), [first.id, second.id, third.id]);
  assert.deepEqual(ids(await find(rqlBuilder().in('data.systolic', ['118', '150']).sort('data.systolic').build())), [second.id, first.id]);
  assert.deepEqual(ids(await find(rqlBuilder().like('data.comment', 'forgot').build())), [third.id]);
  assert.deepEqual(ids(await find(rqlBuilder().eq('data.tags', 'evening').build())), [second.id]);
  assert.deepEqual(
    ids(await find(rqlBuilder().contains('data.readings', rqlBuilder().gt('value', '150').intermediate()).build())),
    [first.id],
  );
  assert.deepEqual(ids(await find(rqlBuilder().excludes('data.systolic').build())), [third.id]);

  // The manual transition: the patient may not, the physician may.
  await assert.rejects(patient.exh.data.documents.transition(schemaName, first.id, { name: 'review' }), NoPermissionError);
  await assert.rejects(physician.exh.data.documents.transition(schemaName, third.id, { name: 'review' }), IllegalArgumentError);
  assert.deepEqual(await physician.exh.data.documents.transition(schemaName, first.id, { name: 'review' }), { affectedRecords: 1 });
  const reviewed = await patient.exh.data.documents.findById(schemaName, first.id);
  assert.equal(reviewed.status, 'reviewed');
  assert.equal(reviewed.data.comment, 'reviewed');

  // A transition permission lets someone outside the modes run that transition only.
  await data.transitions.create(schemaName, { name: 'reopen', type: 'manual', fromStatuses: ['reviewed'], toStatus: 'new' });
  const role = await admin.users.globalRoles.create({ name: 'bp-reopener', description: 'Reopens reviews' });
  await admin.users.globalRoles.addPermissions(rqlBuilder().eq('id', role.id).build(), {
    permissions: [`VIEW_DOCUMENTS:${schemaName}`, `TRANSITION_DOCUMENTS:${schemaName}:reopen`],
  });
  await admin.users.globalRoles.addToUsers(rqlBuilder().eq('id', stranger.user.id).build(), { roles: [role.id] });
  await assert.rejects(stranger.exh.data.documents.update(schemaName, first.id, { comment: 'mine' }), NoPermissionError);
  assert.deepEqual(await stranger.exh.data.documents.transition(schemaName, first.id, { name: 'reopen' }), { affectedRecords: 1 });

  // Arrays of objects and links.
  const reading = await physician.exh.data.documents.appendObjectToArray(schemaName, third.id, 'readings', { value: 71 });
  assert.equal(reading.value, 71);
  assert.match(reading.id, /^[0-9a-f]{24}$/);
  assert.deepEqual(await physician.exh.data.documents.updateObjectInArray(schemaName, third.id, 'readings', reading.id, { value: 72 }), { affectedRecords: 1 });
  assert.deepEqual((await patient.exh.data.documents.findById(schemaName, third.id)).data.readings, [{ value: 72, id: reading.id }]);
  assert.deepEqual(await physician.exh.data.documents.removeObjectFromArray(schemaName, third.id, 'readings', reading.id), { affectedRecords: 1 });
  assert.deepEqual((await patient.exh.data.documents.findById(schemaName, third.id)).data.readings, []);
  await assert.rejects(patient.exh.data.documents.linkUsers(schemaName, third.id, { userIds: [stranger.user.id] }), NoPermissionError);
  await data.documents.linkUsers(schemaName, third.id, { userIds: [stranger.user.id] });
  await data.documents.unlinkAllGroups(schemaName, third.id);
  const relinked = await data.documents.findById(schemaName, third.id);
  assert.deepEqual(relinked.userIds, [patient.user.id, stranger.user.id]);
  assert.deepEqual(relinked.groupIds, []);
  assert.equal(await physician.exh.data.documents.findById(schemaName, third.id), undefined, 'no longer in the group');
  await data.documents.linkGroups(schemaName, third.id, { groupIds: [groupId] });
  await data.documents.unlinkUsers(schemaName, third.id, { userIds: [stranger.user.id] });
  assert.equal((await physician.exh.data.documents.findById(schemaName, third.id)).id, third.id);

  // Updates, deleteFields, deletion.
  assert.deepEqual(await physician.exh.data.documents.update(schemaName, second.id, { comment: 'Fine', tags: null }), { affectedRecords: 1 });
  assert.deepEqual(await physician.exh.data.documents.removeFields(schemaName, second.id, { fields: ['diastolic'] }), { affectedRecords: 1 });
  const updated = await patient.exh.data.documents.findById(schemaName, second.id);
  assert.deepEqual(updated.data, { systolic: 118, comment: 'Fine', readings: [{ value: 118 }] });
  await assert.rejects(patient.exh.data.documents.remove(schemaName, second.id), NoPermissionError);
  assert.deepEqual(await data.documents.remove(schemaName, second.id), { affectedRecords: 1 });
  await assert.rejects(data.documents.remove(schemaName, second.id), ResourceUnknownError);
  assert.equal((await patient.exh.data.documents.find(schemaName)).page.total, 2);
});

test('a delay locks a document until its step resumes; comments on documents', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const { data } = admin;
  const name = 'sdk-delayed-notes';
  await data.schemas.create({ name, description: 'Notes checked a moment later' });
  await data.properties.create(name, { name: 'text', configuration: { type: 'string' } });
  await data.properties.create(name, { name: 'checked', configuration: { type: 'boolean' } });
  await data.transitions.updateCreation(name, {
    type: 'manual',
    toStatus: 'new',
    actions: [{ type: 'linkCreator' }, { type: 'delay', time: 1 }, { type: 'set', field: 'checked', value: true }],
  });
  const patient = await account('sdk-delay-patient@example.com');
  const note = await patient.exh.data.documents.create(name, { text: 'Slept badly' });
  assert.ok(note.transitionLock, 'locked while the step is paused');
  assert.equal(note.data.checked, undefined);
  await assert.rejects(patient.exh.data.documents.update(name, note.id, { text: 'x' }), LockedDocumentError);
  await assert.rejects(patient.exh.data.comments.create(name, note.id, { text: 'x' }), LockedDocumentError);
  assert.equal(await patient.exh.data.documents.assertNonLockedState(name, note.id, 20, 250), true);
  const done = await patient.exh.data.documents.findById(name, note.id);
  assert.equal(done.transitionLock, undefined);
  assert.equal(done.data.checked, true);

  // Comments: the owner's, listed with RQL, changed and removed by their writer.
  const comment = await patient.exh.data.comments.create(name, note.id, { text: 'Better today' });
  assert.equal(comment.text, 'Better today');
  assert.equal(comment.creatorId, patient.user.id);
  assert.equal(comment.documentId, note.id);
  assert.ok(comment.creationTimestamp instanceof Date);
  await data.comments.create(name, note.id, { text: 'Noted' });
  const page = await patient.exh.data.comments.find(name, note.id, { rql: rqlBuilder().eq('creatorId', patient.user.id).build() });
  assert.equal(page.page.total, 1);
  assert.equal((await patient.exh.data.documents.findById(name, note.id)).commentCount, 2);
  const stranger = await account('sdk-delay-stranger@example.com');
  await assert.rejects(stranger.exh.data.comments.find(name, note.id), ResourceUnknownError);
  assert.deepEqual(await patient.exh.data.comments.update(comment.id, name, note.id, { text: 'Much better' }), { affectedRecords: 1 });
  assert.equal((await patient.exh.data.comments.findById(comment.id, name, note.id)).text, 'Much better');
  assert.deepEqual(await patient.exh.data.comments.remove(comment.id, name, note.id), { affectedRecords: 1 });
  await assert.rejects(patient.exh.data.comments.remove(comment.id, name, note.id), ResourceUnknownError);
  assert.equal((await data.comments.find(name, note.id)).page.total, 1);
});
