"""Use the client that openapi-python-client generated from openapi/openapi.json, without
edits, to push records, read a child's profile and follow the change feed of a live hub.

Usage: python generated_client_check.py BASE_URL TOKEN MUNICIPALITY
"""
import sys

from kodomo_hub_client import AuthenticatedClient
from kodomo_hub_client.api.records import changes, push
from kodomo_hub_client.api.subjects import profile
from kodomo_hub_client.models import ChangesPage, IngestReport, ProfileView, PushBatch
from kodomo_hub_client.models.changes_x_purpose import ChangesXPurpose
from kodomo_hub_client.models.profile_x_purpose import ProfileXPurpose

base_url, token, town = sys.argv[1:4]
client = AuthenticatedClient(base_url=base_url, token=token)
child = f"{town}9999910"  # a synthetic child made up for this check

batch = PushBatch.from_dict(
    {
        "records": [
            {
                "record_type": "subject",
                "schema_version": "1.0",
                "source_record_id": "generated-client-subject",
                "subject": {"resident_no": child},
                "effective_date": "2022-04-01",
                "household_no": "HGEN1",
                "name": "生成 太郎",
                "birth_date": "2022-04-01",
                "sex": 1,
                "role": "child",
            },
            {
                "record_type": "school-wellbeing-check",
                "schema_version": "1.0",
                "source_record_id": "generated-client-wellbeing",
                "subject": {"resident_no": child},
                "effective_date": "2025-10-01",
                "checked_on": "2025-10-01",
                "instrument": "こころの健康観察",
                "result": "concern",
            },
        ]
    }
)
pushed = push.sync(code=town, client=client, body=batch)
assert isinstance(pushed, IngestReport), pushed
assert pushed.rejected == 0 and pushed.created + pushed.updated + pushed.unchanged == 2, pushed

seen = profile.sync(
    code=town,
    resident_no=child,
    client=client,
    x_purpose=ProfileXPurpose.CASE_HANDLING,
    x_actor="ci-generated-client",
)
assert isinstance(seen, ProfileView), seen
assert any(item.item == 14 for item in seen.applicable_items), seen.applicable_items

cursor, found = 0, False
while True:
    page = changes.sync(
        code=town,
        client=client,
        after=cursor,
        limit=500,
        x_purpose=ChangesXPurpose.CASE_HANDLING,
        x_actor="ci-generated-client",
    )
    assert isinstance(page, ChangesPage), page
    found = found or any(c.source_record_id == "generated-client-wellbeing" for c in page.changes)
    if page.next_cursor == cursor:
        break
    cursor = page.next_cursor
assert found, "the pushed record is not in the change feed"
print("generated client: push, profile and change feed OK")
