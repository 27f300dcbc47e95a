-- The (deprecated) logo of an OAuth2 application. Nullable and new with the event that sets it,
-- so existing rows are already correct without a rebuild.
ALTER TABLE applications_v1 ADD COLUMN logo TEXT;
