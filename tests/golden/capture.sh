#!/usr/bin/env bash
# Golden capture for refactorings that must not change behaviour: starts the
# given `channelshift-api` binary against an existing, quiet ClickHouse
# database (e.g. a demo stack whose live feed is stopped) and writes every
# answer it gives to a fixed list of requests into a folder: each KPI over
# every period kind, breakdown and filter it accepts, error answers, the
# scorecard, the OpenAPI document, and committee packs (HTTP and CLI, every
# format but PDF) at a fixed as-of. Run it with the binary from before the
# change and from after it, then `diff -r` the two folders.
#
#   tests/golden/capture.sh <api-binary> <api.toml> <out-dir> <as-of RFC 3339> [port]
#
# The API renders packs with the `channelshift-packs` beside its binary.
#
# The API's config must name a read-only ClickHouse user and hold the SHA-256
# of the token in $GOLDEN_TOKEN. Dates are taken from $GOLDEN_TODAY
# (default: today), so a capture made on another day asks the same questions
# only when both captures set it.
set -euo pipefail

api=$(realpath "$1") config=$2 out=$(realpath -m "$3") as_of=$4 port=${5:-18999}
: "${GOLDEN_TOKEN:?set GOLDEN_TOKEN to the API token}"
today=${GOLDEN_TODAY:-$(date -u +%F)}
council=${GOLDEN_COUNCIL:-E07000041}
# The binary with the `pack` command: channelshift-packs beside the API's
# binary, or (before the packs binary existed) the API's own.
packs=$(dirname "$api")/channelshift-packs
[ -x "$packs" ] || packs=$api
mkdir -p "$out"

# The API, on its own port, from a copy of the config.
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sed -E "s/^listen = .*/listen = \"127.0.0.1:$port\"/" "$config" >"$work/api.toml"
"$api" --config "$work/api.toml" >"$work/api.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || {
  cat "$work/api.log"
  exit 1
}

count=0
# get NAME PATH?QUERY: the body in NAME, the status and content type in NAME.status.
get() {
  local name=$1 path=$2
  curl -sS -o "$out/$name" -w '%{http_code} %{content_type}\n' \
    -H "Authorization: Bearer $GOLDEN_TOKEN" "http://127.0.0.1:$port$path" >"$out/$name.status"
  count=$((count + 1))
}

year_ago=$(date -u -d "$today -13 months" +%F)
month_ago=$(date -u -d "$today -40 days" +%F)
range="council=$council&from=$year_ago&to=$today"

declare -A groups=(
  [digital-take-up]="service customer_type service,customer_type"
  [channel-mix]="channel channel_class service customer_type channel_class,service channel,customer_type"
  [satisfaction]="channel channel_class service customer_type channel,customer_type"
  [completion-rate]="channel service customer_type channel,service"
  [cost-per-transaction]="channel_class service customer_type channel_class,customer_type"
  [efficiency-savings]="service"
  [avoidable-contact]="channel channel_class service customer_type"
  [first-contact-resolution]="channel channel_class service customer_type"
  [hotspots]="ward lsoa"
)
declare -A filters=(
  [digital-take-up]="service=waste customer_type=business"
  [channel-mix]="service=council_tax customer_type=resident"
  [satisfaction]="instrument=csat5 instrument=govmetric3 channel=phone customer_type=business"
  [completion-rate]="service=waste channel=app"
  [cost-per-transaction]="service=council_tax customer_type=business"
  [efficiency-savings]="service=waste customer_type=resident"
  [avoidable-contact]="channel=phone"
  [first-contact-resolution]="service=benefits"
  [hotspots]=""
)

for kpi in "${!groups[@]}"; do
  for period in total week month quarter financial_year; do
    get "kpi-$kpi-$period" "/api/v1/kpi/$kpi?$range&period=$period"
    for group in ${groups[$kpi]}; do
      get "kpi-$kpi-$period-by-$group" "/api/v1/kpi/$kpi?$range&period=$period&group_by=$group"
    done
  done
  get "kpi-$kpi-day" "/api/v1/kpi/$kpi?council=$council&from=$month_ago&to=$today&period=day"
  for filter in ${filters[$kpi]}; do
    get "kpi-$kpi-month-$filter" "/api/v1/kpi/$kpi?$range&period=month&$filter"
    get "kpi-$kpi-quarter-$filter-by-${groups[$kpi]%% *}" \
      "/api/v1/kpi/$kpi?$range&period=quarter&$filter&group_by=${groups[$kpi]%% *}"
  done
  get "kpi-$kpi-quiet-council" "/api/v1/kpi/$kpi?council=E07000042&from=$year_ago&to=$today&period=quarter"
done

# Answers that refuse the request.
get error-unknown-kpi "/api/v1/kpi/digital-takeup?$range"
get error-unknown-group "/api/v1/kpi/digital-take-up?$range&group_by=ward"
get error-bad-group "/api/v1/kpi/channel-mix?$range&group_by=colour"
get error-exclusive-groups "/api/v1/kpi/channel-mix?$range&group_by=channel,channel_class"
get error-filter-not-accepted "/api/v1/kpi/hotspots?$range&instrument=csat5"
get error-bad-channel "/api/v1/kpi/digital-take-up?$range&channel=fax"
get error-bad-customer "/api/v1/kpi/digital-take-up?$range&customer_type=alien"
get error-bad-instrument "/api/v1/kpi/satisfaction?$range&instrument=stars"
get error-bad-service "/api/v1/kpi/digital-take-up?$range&service=Council-Tax"
get error-unknown-parameter "/api/v1/kpi/digital-take-up?$range&colour=red"
get error-missing-council "/api/v1/kpi/digital-take-up?from=$year_ago&to=$today"
get error-bad-council "/api/v1/kpi/digital-take-up?council=X1&from=$year_ago&to=$today"
get error-reversed-range "/api/v1/kpi/digital-take-up?council=$council&from=$today&to=$year_ago"
get error-bad-period "/api/v1/kpi/digital-take-up?$range&period=fortnight"
get error-too-many-days "/api/v1/kpi/digital-take-up?council=$council&from=2000-01-01&to=$today&period=day"
get error-scorecard-period "/api/v1/scorecard?council=$council&period=week&date=$today"
get error-scorecard-parameter "/api/v1/scorecard?council=$council&colour=red"
get error-pack-format "/api/v1/exports/pack?council=$council&date=$today&as_of=$as_of&format=docx"

# The scorecard, for each report period, now and a year ago.
for period in month quarter financial_year; do
  for date in "$today" "$year_ago" "$month_ago"; do
    get "scorecard-$period-$date" "/api/v1/scorecard?council=$council&period=$period&date=$date"
  done
done
get scorecard-quiet-council "/api/v1/scorecard?council=E07000042&period=quarter&date=$today"
get openapi "/api/v1/openapi.json"

# Packs over HTTP, and from the command line, at the fixed as-of.
previous=$(date -u -d "$as_of -45 days" +%FT%TZ)
for period in quarter month financial_year; do
  for format in csv csvw xlsx ods html; do
    get "pack-$period-$format" \
      "/api/v1/exports/pack?council=$council&period=$period&date=$today&as_of=$as_of&previous_as_of=$previous&format=$format"
  done
done
mkdir -p "$out/cli"
"$packs" pack --config "$work/api.toml" --council "$council" --period quarter --date "$today" \
  --as-of "$as_of" --previous-as-of "$previous" --format csv,csvw,xlsx,ods,html \
  --out "$out/cli" >"$out/cli/files" 2>/dev/null
sed -i "s|$out/cli/||" "$out/cli/files"

# Workbooks are zip files: keep their members as text too, so a difference
# can be read (and a zip timestamp told from a content change).
# An ODS writes its styles, namespaces and manifest in no fixed order: of
# an ODS only its cells are compared (each sheet's rows, each cell's type,
# value and text, as text in `cells.txt`); the zip itself is not compared
# (diff -r -x '*ods'). XLSX members are compared as they are.
for book in "$out"/pack-*-xlsx "$out"/pack-*-ods "$out"/cli/*.xlsx "$out"/cli/*.ods; do
  [ -f "$book" ] || continue
  mkdir -p "$book.members"
  (cd "$book.members" && unzip -qo "$book")
done
python3 - "$out" <<'PYTHON'
import pathlib, shutil, sys
import xml.etree.ElementTree as tree
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
for members in pathlib.Path(sys.argv[1]).glob("**/*ods.members"):
    lines = []
    for sheet in tree.parse(members / "content.xml").iter(f"{{{TABLE}}}table"):
        lines.append("sheet " + sheet.get(f"{{{TABLE}}}name", ""))
        for row in sheet.iter(f"{{{TABLE}}}table-row"):
            cells = []
            for cell in row.iter(f"{{{TABLE}}}table-cell"):
                kind = cell.get(f"{{{OFFICE}}}value-type", "")
                value = cell.get(f"{{{OFFICE}}}value") or cell.get(f"{{{OFFICE}}}boolean-value") or ""
                text = "".join(cell.itertext())
                repeat = cell.get(f"{{{TABLE}}}number-columns-repeated", "1")
                cells.append(f"{kind}:{value}:{text}x{repeat}")
            lines.append(" | ".join(cells))
    shutil.rmtree(members)
    members.mkdir()
    (members / "cells.txt").write_text("\n".join(lines) + "\n")
PYTHON
echo "captured $count answers and $(ls "$out/cli" | wc -l) CLI files into $out"
