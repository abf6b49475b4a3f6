//! A groupware corpus: what a calendar and contacts migration must carry intact.
//! Recurring events with exceptions (RECURRENCE-ID, EXDATE), all-day events, events in
//! several time zones each with its VTIMEZONE, tasks with DUE and PRIORITY, a journal,
//! contacts in vCard 3.0 and 4.0 with photos and several addresses, and a calendar whose
//! name has spaces and non-ASCII characters. Deterministic; every object valid iCalendar
//! (RFC 5545) or vCard (RFC 2426, RFC 6350) with CRLF line ends.

/// Calendar or address book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupwareKind {
    Calendar,
    AddressBook,
}

/// One object of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusObject {
    /// File name in its collection (`standup.ics`).
    pub name: String,
    pub uid: String,
    /// `event`, `task`, `journal` or `contact`.
    pub kind: &'static str,
    pub data: String,
}

/// One collection of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusCollection {
    pub kind: GroupwareKind,
    /// Last path segment (may hold spaces; encoded when used in a path).
    pub segment: &'static str,
    pub display_name: &'static str,
    pub color: Option<&'static str>,
    pub description: Option<&'static str>,
    /// supported-calendar-component-set; empty for address books.
    pub components: &'static [&'static str],
    pub objects: Vec<CorpusObject>,
}

/// The whole corpus.
#[derive(Debug, Clone)]
pub struct GroupwareCorpus {
    pub collections: Vec<CorpusCollection>,
}

impl GroupwareCorpus {
    /// How many objects of a kind (`event`, `task`, `journal`, `contact`).
    pub fn count(&self, kind: &str) -> usize {
        self.objects().filter(|o| o.kind == kind).count()
    }

    pub fn objects(&self) -> impl Iterator<Item = &CorpusObject> {
        self.collections.iter().flat_map(|c| c.objects.iter())
    }

    /// The collection holding the object with this UID, and the object.
    pub fn find(&self, uid: &str) -> Option<(&CorpusCollection, &CorpusObject)> {
        self.collections
            .iter()
            .find_map(|c| c.objects.iter().find(|o| o.uid == uid).map(|o| (c, o)))
    }
}

/// The display name with spaces and non-ASCII characters.
pub const TEAM_CALENDAR_NAME: &str = "Équipe Paris & Co — 2024 ✓";
/// The UID of the recurring event with exceptions.
pub const STANDUP_UID: &str = "weekly-standup@mailferry.test";
/// The UID of the vCard 3.0 contact with a photo and two addresses.
pub const ANNA_UID: &str = "anna-3@mailferry.test";

const TZ_BERLIN: &str = "BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
";

const TZ_NEW_YORK: &str = "BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE
";

const TZ_KOLKATA: &str = "BEGIN:VTIMEZONE
TZID:Asia/Kolkata
BEGIN:STANDARD
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
TZNAME:IST
DTSTART:19700101T000000
END:STANDARD
END:VTIMEZONE
";

/// A 1×1 PNG, base64.
const PHOTO_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// `text` with CRLF line ends, as iCalendar and vCard want.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn calendar(body: &str) -> String {
    crlf(&format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//mailferry//testkit groupware corpus//EN\nCALSCALE:GREGORIAN\n{body}END:VCALENDAR\n"
    ))
}

fn object(name: &str, uid: &str, kind: &'static str, data: String) -> CorpusObject {
    CorpusObject {
        name: name.to_string(),
        uid: uid.to_string(),
        kind,
        data,
    }
}

/// The corpus: a team calendar (name with spaces and non-ASCII), a task list, an
/// address book.
pub fn groupware_corpus() -> GroupwareCorpus {
    let standup = calendar(&format!(
        "{TZ_BERLIN}BEGIN:VEVENT
UID:{STANDUP_UID}
DTSTAMP:20240101T090000Z
CREATED:20240101T090000Z
LAST-MODIFIED:20240101T090000Z
SEQUENCE:0
DTSTART;TZID=Europe/Berlin:20240108T093000
DTEND;TZID=Europe/Berlin:20240108T100000
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=20
EXDATE;TZID=Europe/Berlin:20240115T093000
SUMMARY:Weekly stand-up\\, team Paris\\; everyone
DESCRIPTION:Agenda:\\n1. Yesterday\\n2. Today\\n3. Blockers — with ünïcödé and a
  line long enough that every server folds it somewhere different
LOCATION:Salle Bleue
CATEGORIES:Work,Team
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Stand-up in 10 minutes
TRIGGER:-PT10M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:{STANDUP_UID}
DTSTAMP:20240101T090000Z
RECURRENCE-ID;TZID=Europe/Berlin:20240122T093000
DTSTART;TZID=Europe/Berlin:20240122T110000
DTEND;TZID=Europe/Berlin:20240122T113000
SUMMARY:Weekly stand-up (moved to 11:00)
SEQUENCE:1
END:VEVENT
BEGIN:VEVENT
UID:{STANDUP_UID}
DTSTAMP:20240101T090000Z
RECURRENCE-ID;TZID=Europe/Berlin:20240205T093000
DTSTART;TZID=Europe/Berlin:20240205T093000
DTEND;TZID=Europe/Berlin:20240205T100000
SUMMARY:Weekly stand-up
STATUS:CANCELLED
SEQUENCE:1
END:VEVENT
"
    ));
    let holiday = calendar(
        "BEGIN:VEVENT
UID:all-day-holiday@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;VALUE=DATE:20240501
DTEND;VALUE=DATE:20240502
SUMMARY:Fête du Travail
TRANSP:TRANSPARENT
END:VEVENT
",
    );
    let retreat = calendar(
        "BEGIN:VEVENT
UID:multi-day-retreat@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;VALUE=DATE:20240610
DTEND;VALUE=DATE:20240613
SUMMARY:Team retreat (three days)
RRULE:FREQ=YEARLY;COUNT=3
END:VEVENT
",
    );
    let new_york = calendar(&format!(
        "{TZ_NEW_YORK}BEGIN:VEVENT
UID:call-new-york@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;TZID=America/New_York:20240312T090000
DTEND;TZID=America/New_York:20240312T100000
SUMMARY:Call with the New York office
ORGANIZER;CN=Anna Müller:mailto:anna@example.test
ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@example.test
ATTENDEE;CN=Chandra;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:chandra@example.test
END:VEVENT
"
    ));
    let kolkata = calendar(&format!(
        "{TZ_KOLKATA}{TZ_BERLIN}BEGIN:VEVENT
UID:review-kolkata@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;TZID=Asia/Kolkata:20240405T153000
DTEND;TZID=Europe/Berlin:20240405T130000
SUMMARY:Review with Kolkata (ends in Berlin time)
URL:https://example.test/review?id=7&lang=fr
END:VEVENT
"
    ));
    let utc = calendar(
        "BEGIN:VEVENT
UID:utc-deadline@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART:20240701T120000Z
DURATION:PT45M
SUMMARY:Release window (UTC)
CLASS:PRIVATE
END:VEVENT
",
    );
    let task_urgent = calendar(
        "BEGIN:VTODO
UID:task-urgent@mailferry.test
DTSTAMP:20240101T090000Z
DUE:20240115T170000Z
PRIORITY:1
STATUS:NEEDS-ACTION
SUMMARY:Send the migration plan
END:VTODO
",
    );
    let task_date = calendar(&format!(
        "{TZ_BERLIN}BEGIN:VTODO
UID:task-normal@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;TZID=Europe/Berlin:20240201T090000
DUE;TZID=Europe/Berlin:20240210T120000
PRIORITY:5
PERCENT-COMPLETE:40
STATUS:IN-PROCESS
SUMMARY:Check every mailbox after the switch
END:VTODO
"
    ));
    let task_done = calendar(
        "BEGIN:VTODO
UID:task-done@mailferry.test
DTSTAMP:20240101T090000Z
DUE;VALUE=DATE:20231231
PRIORITY:9
STATUS:COMPLETED
COMPLETED:20231230T101500Z
PERCENT-COMPLETE:100
SUMMARY:Order new server
END:VTODO
",
    );
    let journal = calendar(
        "BEGIN:VJOURNAL
UID:journal-1@mailferry.test
DTSTAMP:20240101T090000Z
DTSTART;VALUE=DATE:20240102
SUMMARY:Notes of the kick-off
DESCRIPTION:Decided: migrate on a Friday night\\, resync on Monday.
END:VJOURNAL
",
    );
    let anna = crlf(&format!(
        "BEGIN:VCARD
VERSION:3.0
UID:{ANNA_UID}
FN:Anna Müller
N:Müller;Anna;;Dr.;
ORG:Example GmbH;Migration team
TITLE:Head of IT
EMAIL;TYPE=INTERNET,WORK:anna@example.test
EMAIL;TYPE=INTERNET,HOME:anna.mueller@home.example
TEL;TYPE=WORK,VOICE:+49 30 1234567
TEL;TYPE=CELL:+49 170 7654321
ADR;TYPE=WORK:;;Friedrichstraße 12;Berlin;;10117;Germany
ADR;TYPE=HOME:;;Am Weiher 3;Potsdam;Brandenburg;14467;Germany
NOTE:Prefers calls before 10:00\\nSpeaks German\\, French and English
PHOTO;ENCODING=b;TYPE=PNG:{PHOTO_PNG}
BDAY:1980-04-12
END:VCARD
"
    ));
    // A vCard 4 photo by URL: Radicale 3.1.8 (vobject) cuts an inline `data:` URI at its
    // comma and keeps `data:image/png;base64` alone; `verify` reports that, so the corpus
    // holds the inline photo in vCard 3 (Anna) only.
    let bob = crlf(
        "BEGIN:VCARD
VERSION:4.0
UID:urn:uuid:4f9a1c2e-7b1d-4c55-9f0e-6d3e2a1b0c9d
FN:Bob Nakamura
N:Nakamura;Bob;;;
KIND:individual
EMAIL;TYPE=work:bob@example.test
TEL;VALUE=uri;TYPE=voice,cell:tel:+81-3-1234-5678
ADR;TYPE=work:;;1-2-3 Marunouchi;Chiyoda-ku;Tokyo;100-0005;Japan
ADR;TYPE=home:;;4-5-6 Shibuya;Shibuya-ku;Tokyo;150-0002;Japan
PHOTO;MEDIATYPE=image/png:https://example.test/photos/bob.png
END:VCARD
",
    );
    let chandra = crlf(
        "BEGIN:VCARD
VERSION:3.0
UID:chandra-3@mailferry.test
FN:Chandra Iyer
N:Iyer;Chandra;;;
EMAIL;TYPE=INTERNET:chandra@example.test
ADR;TYPE=WORK:;Floor 4;MG Road 100;Bengaluru;Karnataka;560001;India
ADR;TYPE=HOME:;;12 Lake View;Kolkata;West Bengal;700001;India
CATEGORIES:Partners,India
END:VCARD
",
    );
    GroupwareCorpus {
        collections: vec![
            CorpusCollection {
                kind: GroupwareKind::Calendar,
                segment: "team paris",
                display_name: TEAM_CALENDAR_NAME,
                color: Some("#FF8800FF"),
                description: Some("Team calendar: stand-ups, holidays, calls"),
                components: &["VEVENT"],
                objects: vec![
                    object("standup.ics", STANDUP_UID, "event", standup),
                    object(
                        "holiday.ics",
                        "all-day-holiday@mailferry.test",
                        "event",
                        holiday,
                    ),
                    object(
                        "retreat.ics",
                        "multi-day-retreat@mailferry.test",
                        "event",
                        retreat,
                    ),
                    object(
                        "new-york.ics",
                        "call-new-york@mailferry.test",
                        "event",
                        new_york,
                    ),
                    object(
                        "kolkata.ics",
                        "review-kolkata@mailferry.test",
                        "event",
                        kolkata,
                    ),
                    object("utc.ics", "utc-deadline@mailferry.test", "event", utc),
                ],
            },
            CorpusCollection {
                kind: GroupwareKind::Calendar,
                segment: "tasks",
                display_name: "Tasks",
                color: Some("#3366CCFF"),
                description: None,
                components: &["VTODO", "VJOURNAL"],
                objects: vec![
                    object(
                        "urgent.ics",
                        "task-urgent@mailferry.test",
                        "task",
                        task_urgent,
                    ),
                    object(
                        "normal.ics",
                        "task-normal@mailferry.test",
                        "task",
                        task_date,
                    ),
                    object("done.ics", "task-done@mailferry.test", "task", task_done),
                    object(
                        "kickoff.ics",
                        "journal-1@mailferry.test",
                        "journal",
                        journal,
                    ),
                ],
            },
            CorpusCollection {
                kind: GroupwareKind::AddressBook,
                segment: "contacts",
                display_name: "Kontakte — Büro",
                color: None,
                description: Some("Work contacts"),
                components: &[],
                objects: vec![
                    object("anna.vcf", ANNA_UID, "contact", anna),
                    object(
                        "bob.vcf",
                        "urn:uuid:4f9a1c2e-7b1d-4c55-9f0e-6d3e2a1b0c9d",
                        "contact",
                        bob,
                    ),
                    object(
                        "chandra.vcf",
                        "chandra-3@mailferry.test",
                        "contact",
                        chandra,
                    ),
                ],
            },
        ],
    }
}

/// An event that is not in the corpus, for delta passes.
pub fn extra_event(uid: &str, summary: &str) -> String {
    calendar(&format!(
        "BEGIN:VEVENT
UID:{uid}
DTSTAMP:20240301T090000Z
DTSTART:20240320T140000Z
DTEND:20240320T150000Z
SUMMARY:{summary}
END:VEVENT
"
    ))
}

/// Bad data that real servers disagree about, one object each, for the per-object
/// problems of a pass (issue 8: reported with the server's words, the rest goes on).
///
/// An event whose SUMMARY holds U+0001: Radicale 3.1.8 stores and serves it; Xandikos
/// 0.2.8 refuses it (`valid-calendar-data`: "Invalid character b'\\x01' in field SUMMARY").
pub fn event_with_control_character(uid: &str) -> String {
    extra_event(uid, "Fire drill \u{1} bell test")
}

/// Two vCards in one resource (an export glued into one file): Xandikos 0.2.8 stores it (it
/// checks only the first and last line), but a CardDAV resource is one contact (RFC 6352
/// §5.1), so it has no one UID and does not parse as a contact.
pub fn two_cards_in_one(first_uid: &str, second_uid: &str) -> String {
    let card = |uid: &str, name: &str| {
        format!("BEGIN:VCARD\nVERSION:3.0\nUID:{uid}\nFN:{name}\nN:{name};;;;\nEND:VCARD\n")
    };
    crlf(&format!(
        "{}{}",
        card(first_uid, "Glued One"),
        card(second_uid, "Glued Two")
    ))
}

/// An event and a task with one UID in one object: Xandikos 0.2.8 stores it; Radicale
/// 3.1.8 refuses it (400; its log says "Multiple component types in object").
pub fn event_and_task_in_one(uid: &str) -> String {
    calendar(&format!(
        "BEGIN:VEVENT
UID:{uid}
DTSTAMP:20240301T090000Z
DTSTART:20240321T140000Z
DTEND:20240321T150000Z
SUMMARY:Planning meeting
END:VEVENT
BEGIN:VTODO
UID:{uid}
DTSTAMP:20240301T090000Z
SUMMARY:Prepare the planning meeting
END:VTODO
"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_is_crlf_and_unique() {
        let corpus = groupware_corpus();
        let mut uids = std::collections::HashSet::new();
        for object in corpus.objects() {
            assert!(uids.insert(object.uid.clone()), "{}", object.uid);
            assert!(object.data.contains(&format!("UID:{}\r\n", object.uid)));
            assert!(!object.data.replace("\r\n", "").contains('\n'));
        }
        assert_eq!(corpus.count("event"), 6);
        assert_eq!(corpus.count("task"), 3);
        assert_eq!(corpus.count("contact"), 3);
    }
}
