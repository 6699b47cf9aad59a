-- The destination's signed outcome message for an exchanged package: written by the
-- destination hub when its town accepts or declines (inbound row), kept by the origin hub
-- when it imports it (outbound row). One per package.
ALTER TABLE transfer_packages ADD COLUMN outcome_xml TEXT;
ALTER TABLE transfer_packages ADD COLUMN outcome_signature TEXT;
