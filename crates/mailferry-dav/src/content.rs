//! What is inside an object, read with calcard: its UID and kind (event, task, journal,
//! contact), and a normalised form for comparing two servers' copies. Servers rewrite
//! objects they store (Radicale and Xandikos reorder properties, refold lines, reorder
//! RRULE parts, re-escape text), so `verify` compares meaning, not bytes.

use calcard::icalendar::{ICalendar, ICalendarComponentType};
use calcard::vcard::VCard;
use calcard::{Entry, Parser};

/// The kind of one object, as the status counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Event,
    Task,
    Journal,
    Contact,
    /// A calendar object with none of the above (free/busy, availability).
    Other,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Event => "event",
            ObjectKind::Task => "task",
            ObjectKind::Journal => "journal",
            ObjectKind::Contact => "contact",
            ObjectKind::Other => "other",
        }
    }

    /// The iCalendar component name (`VEVENT`), for supported-calendar-component-set.
    pub fn component(self) -> Option<&'static str> {
        match self {
            ObjectKind::Event => Some("VEVENT"),
            ObjectKind::Task => Some("VTODO"),
            ObjectKind::Journal => Some("VJOURNAL"),
            _ => None,
        }
    }
}

/// An object's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub uid: String,
    pub kind: ObjectKind,
}

enum Parsed {
    Calendar(ICalendar),
    Card(VCard),
}

fn parse(data: &str) -> Result<Parsed, String> {
    let mut parser = Parser::new(data);
    let parsed = match parser.entry() {
        Entry::ICalendar(calendar) => Parsed::Calendar(calendar),
        Entry::VCard(card) => Parsed::Card(card),
        Entry::Eof => return Err("it is empty".into()),
        other => return Err(describe(other)),
    };
    match parser.entry() {
        Entry::Eof => Ok(parsed),
        Entry::ICalendar(_) | Entry::VCard(_) => {
            Err("it holds more than one calendar or card".into())
        }
        other => Err(describe(other)),
    }
}

fn describe(entry: Entry) -> String {
    match entry {
        Entry::InvalidLine(line) => {
            let line: String = line.chars().take(80).collect();
            format!("it has a line that is not iCalendar or vCard: `{line}`")
        }
        Entry::UnexpectedComponentEnd { expected, found } => format!(
            "END:{} where END:{} was expected",
            found.as_str(),
            expected.as_str()
        ),
        Entry::UnterminatedComponent(name) => format!("BEGIN:{name} is never ended"),
        Entry::TooManyComponents => "it has too many components".into(),
        _ => "it is not iCalendar or vCard".into(),
    }
}

/// UID and kind of an object's data; `Err` says, in words, why it cannot be used.
pub fn inspect(data: &str) -> Result<Inspected, String> {
    match parse(data)? {
        Parsed::Card(card) => {
            let uid = card
                .uid()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .ok_or("the contact has no UID")?;
            Ok(Inspected {
                uid: uid.to_string(),
                kind: ObjectKind::Contact,
            })
        }
        Parsed::Calendar(calendar) => {
            let mut kind = ObjectKind::Other;
            let mut uid = None;
            for component in &calendar.components {
                let this = match component.component_type {
                    ICalendarComponentType::VEvent => ObjectKind::Event,
                    ICalendarComponentType::VTodo => ObjectKind::Task,
                    ICalendarComponentType::VJournal => ObjectKind::Journal,
                    ICalendarComponentType::VFreebusy | ICalendarComponentType::VAvailability => {
                        ObjectKind::Other
                    }
                    _ => continue,
                };
                if kind == ObjectKind::Other {
                    kind = this;
                }
                if uid.is_none() {
                    uid = component.uid().map(str::trim).filter(|u| !u.is_empty());
                }
            }
            let uid = uid.ok_or("the calendar object has no UID")?;
            Ok(Inspected {
                uid: uid.to_string(),
                kind,
            })
        }
    }
}

/// A canonical text of an object: each property written the one way calcard writes it,
/// unfolded, sorted within its component; components sorted among their siblings. Two
/// objects with the same meaning have the same normal form.
pub fn normalise(data: &str) -> Result<String, String> {
    match parse(data)? {
        Parsed::Calendar(calendar) => {
            if calendar.components.is_empty() {
                return Err("it has no component".into());
            }
            Ok(normal_component(&calendar, 0))
        }
        Parsed::Card(card) => {
            let is_v4 = matches!(card.version(), Some(calcard::vcard::VCardVersion::V4_0));
            let mut lines: Vec<String> = card
                .entries
                .iter()
                .map(|entry| {
                    let mut line = String::new();
                    let _ = entry.write_to(&mut line, is_v4);
                    unfold(&line)
                })
                .collect();
            lines.sort();
            Ok(format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n")))
        }
    }
}

fn normal_component(calendar: &ICalendar, id: u32) -> String {
    let Some(component) = calendar.components.get(id as usize) else {
        return String::new();
    };
    let name = component.component_type.as_str();
    let mut lines: Vec<String> = component
        .entries
        .iter()
        .map(|entry| {
            let mut line = String::new();
            let _ = entry.write_to(&mut line);
            unfold(&line)
        })
        .collect();
    lines.sort();
    let mut children: Vec<String> = component
        .component_ids
        .iter()
        .map(|child| normal_component(calendar, *child))
        .collect();
    children.sort();
    format!(
        "BEGIN:{name}\n{}\n{}END:{name}\n",
        lines.join("\n"),
        children.concat()
    )
}

/// RFC 5545 §3.1 unfolding, and no line end.
fn unfold(line: &str) -> String {
    line.replace("\r\n ", "")
        .replace("\r\n\t", "")
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

/// The first line where two normal forms differ, for reports: `(source line, target line)`.
pub fn first_difference(source: &str, target: &str) -> (String, String) {
    let a: Vec<&str> = source.lines().collect();
    let b: Vec<&str> = target.lines().collect();
    let only_a: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_b: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    let cut = |l: Option<&&&str>| {
        l.map(|l| l.chars().take(120).collect::<String>())
            .unwrap_or_else(|| "(nothing)".into())
    };
    (cut(only_a.first()), cut(only_b.first()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\nUID:a@b\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20240101\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nSUMMARY:Comma\\, semicolon\\; done\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    // The same event as Xandikos gives it back: properties and RRULE parts reordered,
    // folded differently.
    const EVENT_REWRITTEN: &str = "BEGIN:VCALENDAR\r\nPRODID:-//x//y//EN\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Comma\\, semi\r\n colon\\; done\r\nDTSTART;VALUE=DATE:20240101\r\nDTSTAMP:20240101T000000Z\r\nUID:a@b\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nBEGIN:VALARM\r\nDESCRIPTION:x\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn rewritten_copies_normalise_equal() {
        assert_eq!(
            normalise(EVENT).unwrap(),
            normalise(EVENT_REWRITTEN).unwrap()
        );
        let changed = EVENT.replace("done", "changed");
        let (a, b) = first_difference(&normalise(EVENT).unwrap(), &normalise(&changed).unwrap());
        assert!(a.contains("done") && b.contains("changed"), "{a} / {b}");
    }

    #[test]
    fn identity_of_events_tasks_and_contacts() {
        assert_eq!(
            inspect(EVENT).unwrap(),
            Inspected {
                uid: "a@b".into(),
                kind: ObjectKind::Event
            }
        );
        let task = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t1\r\nDUE:20240101T100000Z\r\nPRIORITY:1\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        assert_eq!(inspect(task).unwrap().kind, ObjectKind::Task);
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Ann\r\nN:;Ann;;;\r\nEND:VCARD\r\n";
        assert_eq!(
            inspect(card).unwrap(),
            Inspected {
                uid: "c1".into(),
                kind: ObjectKind::Contact
            }
        );
    }

    #[test]
    fn bad_objects_say_what_is_wrong() {
        assert!(inspect("").unwrap_err().contains("empty"));
        assert!(
            inspect("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n")
                .unwrap_err()
                .contains("no UID")
        );
        assert!(inspect("hello world").is_err());
    }
}
