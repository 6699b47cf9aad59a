ALTER TABLE transfer_packages DROP COLUMN outcome_signature;
ALTER TABLE transfer_packages DROP COLUMN outcome_xml;
