ALTER TABLE transfer_children DROP COLUMN objection_note;
ALTER TABLE transfer_children DROP COLUMN objected_on;
