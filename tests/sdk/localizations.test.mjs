// The localization service through the unmodified Extra Horizon SDK: bulk create, update and
// delete, requesting texts with the EN fallback and arguments, countries, regions and languages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DefaultLocalizationMissingError, ResourceUnknownError, rqlBuilder } from '@extrahorizon/javascript-sdk';
import { adminEmail, adminPassword, loggedIn } from './vigil.mjs';

test('localizations are created, found, requested, updated and deleted in bulk', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const created = await admin.localizations.create({
    localizations: [
      { key: 'sdk_mail_subject', text: { EN: 'Your report', NL: 'Uw verslag' } },
      { key: 'sdk_heart_rate', text: { EN: 'On $1 your heart rate was $2 bpm.', NL: 'Op $1 was uw hartslag $2 bpm.' } },
    ],
  });
  assert.deepEqual(created, { created: 2, existing: 0, existingIds: [] });

  // Existing keys are left as they are, and named.
  const again = await admin.localizations.create({
    localizations: [
      { key: 'sdk_mail_subject', text: { EN: 'Overwritten?' } },
      { key: 'sdk_greeting', text: { EN: 'Hello' } },
    ],
  });
  assert.deepEqual(again, { created: 1, existing: 1, existingIds: ['sdk_mail_subject'] });

  // Found by key (the SDK encodes the underscore twice).
  const subject = await admin.localizations.findByKey('sdk_mail_subject');
  assert.deepEqual(subject.text, { EN: 'Your report', NL: 'Uw verslag' });
  assert.ok(subject.creationTimestamp instanceof Date);
  assert.ok(subject.updateTimestamp instanceof Date);
  const all = await admin.localizations.findAll({ rql: rqlBuilder().like('key', 'sdk_').build() });
  assert.deepEqual(all.map((l) => l.key).sort(), ['sdk_greeting', 'sdk_heart_rate', 'sdk_mail_subject']);

  // Requested: the languages asked for that have a text, EN always; arguments fill $1, $2.
  const texts = await admin.localizations.getByKeys({
    localizationCodes: ['NL', 'DE'],
    localizations: ['sdk_mail_subject', 'sdk_greeting', 'sdk_heart_rate, 06/10/2021, 63', 'sdk_unknown'],
  });
  assert.deepEqual(texts, {
    sdk_mail_subject: { EN: 'Your report', NL: 'Uw verslag' },
    sdk_greeting: { EN: 'Hello' },
    sdk_heart_rate: { EN: 'On 06/10/2021 your heart rate was 63 bpm.', NL: 'Op 06/10/2021 was uw hartslag 63 bpm.' },
  });

  // Updated: the given languages change, the others stay; unknown keys are named.
  const updated = await admin.localizations.update({
    localizations: [
      { key: 'sdk_greeting', text: { NL: 'Hallo' } },
      { key: 'sdk_missing', text: { EN: 'Missing' } },
    ],
  });
  assert.deepEqual(updated, { updated: 1, missing: 1, missingIds: ['sdk_missing'] });
  const greeting = await admin.localizations.findByKey('sdk_greeting');
  assert.deepEqual(greeting.text, { EN: 'Hello', NL: 'Hallo' });

  // Refusals: no EN text, a key twice, a language that is none, no permission.
  await assert.rejects(
    admin.localizations.create({ localizations: [{ key: 'sdk_dutch_only', text: { NL: 'Alleen Nederlands' } }] }),
    DefaultLocalizationMissingError,
  );
  await assert.rejects(
    admin.localizations.create({
      localizations: [{ key: 'sdk_twice', text: { EN: 'a' } }, { key: 'sdk_twice', text: { EN: 'b' } }],
    }),
    (error) => error.status === 400 && error.response?.name === 'DUPLICATE_LOCALIZATION_INPUT_KEYS',
  );
  await assert.rejects(
    admin.localizations.create({ localizations: [{ key: 'sdk_bad_language', text: { EN: 'a', XX: 'b' } }] }),
    (error) => error.status === 400,
  );
  assert.equal(await admin.localizations.findByKey('sdk_dutch_only'), undefined);

  // Deleted by RQL; a delete without one is refused.
  await assert.rejects(admin.localizations.remove(), (error) => error.status === 400 && error.response?.code === 20);
  const removed = await admin.localizations.remove(rqlBuilder().in('key', ['sdk_greeting', 'sdk_heart_rate']).build());
  assert.equal(removed.affectedRecords, 2);
  assert.equal(await admin.localizations.findByKey('sdk_greeting'), undefined);
  assert.ok(await admin.localizations.findByKey('sdk_mail_subject'));
});

test('countries, their regions and languages come from the ISO standards', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  const countries = await admin.localizations.getCountries();
  assert.ok(countries.includes('BE') && countries.includes('US') && countries.length > 240);
  const regions = await admin.localizations.getRegions('BE');
  assert.ok(regions.includes('BE-VLI') && regions.includes('BE-BRU'), regions.join());
  await assert.rejects(admin.localizations.getRegions('XX'), ResourceUnknownError);
  const languages = await admin.localizations.getLanguages();
  assert.ok(languages.includes('EN') && languages.includes('NL'));
  assert.ok(await admin.localizations.health());
});
