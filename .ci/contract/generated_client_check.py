"""Use the client that openapi-python-client generated from openapi/openapi.json (with
openapi/python-client.json, which gives the classes ASCII names), without edits: push two typed
records, then read them back — history, profile and change feed — as instances of their own
record classes (one class per record type, chosen by `record_type`), never as a generic dict.

Usage: python generated_client_check.py BASE_URL TOKEN MUNICIPALITY
"""
import sys

from kodomo_hub_client import AuthenticatedClient
from kodomo_hub_client.api.records import changes, history, push
from kodomo_hub_client.api.subjects import profile
from kodomo_hub_client.models import (
    ChangesPage,
    History,
    IngestReport,
    ProfileView,
    Purpose,
    PushBatch,
    SchoolWellbeingCheckRecord,
    SchoolWellbeingCheckRecordResult,
    Sex,
    SubjectRecord,
    SubjectRecordRole,
    SubjectRef,
)

base_url, token, town = sys.argv[1:4]
client = AuthenticatedClient(base_url=base_url, token=token)
child = f"{town}9999910"  # a synthetic child made up for this check
read = {"x_purpose": Purpose.CASE_HANDLING, "x_actor": "ci-generated-client"}

subject = SubjectRecord(
    record_type="subject",
    schema_version="1.0",
    source_record_id="generated-client-subject",
    subject=SubjectRef(resident_no=child),
    effective_date="2022-04-01",
    household_no="HGEN1",
    name="生成 太郎",
    birth_date="2022-04-01",
    sex=Sex.VALUE_1,
    role=SubjectRecordRole.CHILD,
)
wellbeing = SchoolWellbeingCheckRecord(
    record_type="school-wellbeing-check",
    schema_version="1.0",
    source_record_id="generated-client-wellbeing",
    subject=SubjectRef(resident_no=child),
    effective_date="2025-10-01",
    checked_on="2025-10-01",
    instrument="こころの健康観察",
    result=SchoolWellbeingCheckRecordResult.CONCERN,
)
pushed = push.sync(code=town, client=client, body=PushBatch(records=[subject, wellbeing]))
assert isinstance(pushed, IngestReport), pushed
assert pushed.rejected == 0 and pushed.created + pushed.updated + pushed.unchanged == 2, pushed

# History: the version holds the record as its own class, equal to what was sent.
past = history.sync(code=town, source_record_id="generated-client-wellbeing", client=client, **read)
assert isinstance(past, History), past
back = past.versions[-1].record
assert isinstance(back, SchoolWellbeingCheckRecord), type(back)
assert back.to_dict() == wellbeing.to_dict(), (back.to_dict(), wellbeing.to_dict())
assert back.result is SchoolWellbeingCheckRecordResult.CONCERN

# Profile: the subject and every current record typed by its record_type.
seen = profile.sync(code=town, resident_no=child, client=client, **read)
assert isinstance(seen, ProfileView), seen
assert isinstance(seen.subject, SubjectRecord), type(seen.subject)
assert seen.subject.name == "生成 太郎" and seen.subject.sex is Sex.VALUE_1
kinds = {type(current.record).__name__ for current in seen.records}
assert "SchoolWellbeingCheckRecord" in kinds and all(k.endswith("Record") for k in kinds), kinds
assert any(item.item == 14 for item in seen.applicable_items), seen.applicable_items

# Change feed: the pushed record comes back typed too.
cursor, found = 0, None
while True:
    page = changes.sync(code=town, client=client, after=cursor, limit=500, **read)
    assert isinstance(page, ChangesPage), page
    for change in page.changes:
        if change.source_record_id == "generated-client-wellbeing":
            found = change.record
    if page.next_cursor == cursor:
        break
    cursor = page.next_cursor
assert isinstance(found, SchoolWellbeingCheckRecord), type(found)
print("generated Python client: typed records pushed and read back (history, profile, change feed)")
