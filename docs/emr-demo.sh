#!/bin/sh
# Each demo clinic uses its EMR end to end against the local fake FHIR servers: Bright
# Futures on Epic (RS384 key), Lotus IVF on Oracle Health (ES384 key). A counselor
# searches the EMR, imports a patient (twice: still one patient), re-syncs it, books a
# session and sees it arrive in the EMR as a FHIR Appointment. Run it while `make run` serves.
#   sh docs/emr-demo.sh [gateway URL, default http://127.0.0.1:8000]
set -eu
G=${1:-http://127.0.0.1:8000}
TOKEN=
gql() {
  curl -sf "$G/graphql" -H "Content-Type: application/json" \
    ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -d "$1"
}
pick() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
login() {
  gql "{\"query\":\"mutation { login(email: \\\"$1\\\", password: \\\"santana-demo-pass\\\") { accessToken } }\"}" \
    | pick 'd["data"]["login"]["accessToken"]'
}
search() {
  gql "{\"query\":\"{ searchEmrPatients($1) { emrId family given birthDate mrn linkedPatientId } }\"}"
}
import_() {
  gql "{\"query\":\"mutation { importEmrPatient(emrId: \\\"$1\\\") { created patient { id firstName lastName emr { system id } } } }\"}"
}
sync() {
  gql "{\"query\":\"mutation { syncPatientFromEmr(patientId: \\\"$1\\\") { id firstName lastName dateOfBirth emr { system id } } }\"}"
}
book() {
  AT=$(python3 -c "import datetime as d, random; t=d.datetime.now(d.UTC)+d.timedelta(days=random.randint(40,300)); print(t.replace(hour=random.randint(8,17), minute=0, second=0, microsecond=0).isoformat())")
  gql "{\"query\":\"mutation { scheduleSession(input: {patientId: \\\"$1\\\", startsAt: \\\"$AT\\\"}) { id startsAt } }\"}"
}
emr_appointment() {  # waits for the outbox worker to deliver the push
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    FOUND=$(curl -sf "$G/_fakes/$1/_test/appointments" | python3 -c "
import json, sys
for a in json.load(sys.stdin):
    if any(i['value'] == '$2' for i in a.get('identifier', [])):
        print(json.dumps({k: a[k] for k in ('id', 'status', 'start', 'end', 'participant')}))")
    if [ -n "$FOUND" ]; then echo "$FOUND"; return; fi
    sleep 1
  done
  echo "not delivered yet (is the outbox worker running?)"
}

demo() {  # clinic login, plugin, search criteria, EMR patient id
  echo "== $1 ($2)"
  TOKEN=$(login "$1")
  echo "searchEmrPatients($3): $(search "$3")"
  FIRST=$(import_ "$4")
  echo "importEmrPatient:       $FIRST"
  echo "again (no duplicate):   $(import_ "$4")"
  PATIENT=$(echo "$FIRST" | pick 'd["data"]["importEmrPatient"]["patient"]["id"]')
  echo "syncPatientFromEmr:     $(sync "$PATIENT")"
  SESSION=$(book "$PATIENT" | pick 'd["data"]["scheduleSession"]["id"]')
  ROW=$(python3 -c "import base64; s='$SESSION'; print(base64.urlsafe_b64decode(s + '=' * (-len(s) % 4)).decode().split(':', 1)[1])")
  echo "booked session $SESSION; in the EMR:"
  echo "  $(emr_appointment "$2" "$ROW")"
}

demo counselor1@brightfutures.test emr_epic 'family: \"Chalmers\"' example
demo counselor1@lotusivf.test emr_cerner 'given: \"Eve\"' 1
