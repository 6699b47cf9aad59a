-- A guardian's objection (不同意) as it stood when the package left the origin hub: imported
-- transfers carry it here because the origin's opt-outs are on another hub. Applied at
-- acceptance like an objection recorded within this hub.
ALTER TABLE transfer_children ADD COLUMN objected_on TEXT;
ALTER TABLE transfer_children ADD COLUMN objection_note TEXT;
