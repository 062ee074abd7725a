//! The plan: what one item needs on one destination, decided from what the
//! ledger knows about it and what the destination can do.
//!
//! [`plan`] is a pure function: no store, no network, no clock, no threads.
//! The pipeline gathers [`Known`] from the store, asks for a [`Plan`], and
//! `execute` carries it out through the ledger and the workers. Whatever
//! needs the destination's answer (is the name free? does it already hold
//! this content?) is asked by the worker that carries the plan out: `adopt`
//! says whether an object found under the name may be taken over when it
//! holds exactly the item's content. See docs/ARCHITECTURE.md.

use crate::dest::Capabilities;
use crate::store::{EntryRow, EntryState, Hash};

/// What is being planned: one file today (a photo with its companions
/// next), its content, and where it belongs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Item<'a> {
    pub hash: Hash,
    /// The album it belongs in.
    pub album: &'a str,
    /// Its name in the album, before any " (n)" suffix.
    pub base: &'a str,
}

/// What the ledger knows that bears on the item, gathered before planning.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Known<'a> {
    /// The item's own entry on this destination (not one being deleted).
    pub current: Option<&'a EntryRow>,
    /// Other files refer to `current` too: it can be neither moved nor
    /// overwritten for this one.
    pub current_shared: bool,
    /// A name the item reserved for this very content that no commit
    /// confirmed (a crash or a lost answer came between).
    pub reservation: Option<&'a EntryRow>,
    /// An entry of the album with the item's content (not `current`).
    pub twin: Option<&'a EntryRow>,
    /// `twin` is a reservation whose upload is under way now.
    pub twin_in_flight: bool,
    /// The item may wait for a twin under way (false once such a wait
    /// ended without it).
    pub may_wait: bool,
}

/// Where a new object goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Target<'a> {
    /// The first free name (`base`, `base (2)`, …), reserved when the plan
    /// is carried out.
    FreeName,
    /// The name the item reserved earlier ([`Known::reservation`]).
    Reserved(&'a EntryRow),
}

/// What the item needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Plan<'a> {
    /// Stored as it is: nothing to do.
    Unchanged(&'a EntryRow),
    /// The album holds the content already under the item's name (or a
    /// numbered form of it; or under any name, where the destination
    /// cannot copy): the item is recorded there, nothing is sent. `moved`:
    /// it is the item's own content under another name (a rename or move
    /// inside the watch).
    Link { to: &'a EntryRow, moved: bool },
    /// The same content is on its way into the album for another file:
    /// wait for it, then link.
    Wait(&'a EntryRow),
    /// A move that a crash interrupted: finish it.
    FinishMove(&'a EntryRow),
    /// New content for the item's own entry, in its place. `overwrite`:
    /// the object there is a version this engine confirmed.
    Replace {
        entry: &'a EntryRow,
        overwrite: bool,
    },
    /// Same content, new place: move the object on the destination.
    Move(&'a EntryRow),
    /// A new object copied from one the destination holds: the item's own
    /// entry elsewhere, or the same content under another name, so that
    /// every name the user had is kept without sending the bytes again.
    Copy {
        from: &'a EntryRow,
        to: Target<'a>,
        adopt: bool,
    },
    /// A new object sent from the source.
    Upload { to: Target<'a>, adopt: bool },
}

/// Decides what `item` needs, given what the ledger knows and what the
/// destination can do.
pub(super) fn plan<'a>(item: &Item<'_>, known: &Known<'a>, can: Capabilities) -> Plan<'a> {
    let hash = Some(item.hash);
    let in_place = |e: &EntryRow| e.album == item.album && e.base_name == item.base;
    let present = |e: &EntryRow| e.state == EntryState::Present;
    if let Some(e) = known.current
        && in_place(e)
        && e.hash == hash
        && present(e)
    {
        return Plan::Unchanged(e);
    }
    if known.reservation.is_none()
        && let Some(twin) = known.twin
    {
        if twin.state == EntryState::Reserved && known.twin_in_flight && known.may_wait {
            return Plan::Wait(twin);
        }
        // The album holds the content already. Under the item's own name
        // (or a numbered form of it) it is linked: nothing is sent, no name
        // is missing. Under another name, the item's name is added by a
        // server-side copy below, unless the destination cannot copy.
        if present(twin) && (twin.base_name == item.base || !can.server_side_copy) {
            let moved = known.current.is_some_and(|c| c.hash == hash);
            return Plan::Link { to: twin, moved };
        }
    }
    if known.reservation.is_none()
        && !known.current_shared
        && let Some(e) = known.current
    {
        if e.moving_from.is_some() {
            return Plan::FinishMove(e);
        }
        if in_place(e) {
            return Plan::Replace {
                entry: e,
                overwrite: present(e),
            };
        }
        if e.hash == hash && present(e) && can.rename {
            return Plan::Move(e);
        }
    }
    let to = known.reservation.map_or(Target::FreeName, Target::Reserved);
    // An object found under the name is taken over only when it can be read
    // back and proven to be this content: a name reserved before, or any
    // name for an item the ledger has never seen (the store was rebuilt).
    let adopt = can.reads_back && (known.reservation.is_some() || known.current.is_none());
    // The content is on the destination already (the item's own entry
    // elsewhere, or a twin under another name): copy it there.
    let copy_from = known
        .current
        .filter(|c| c.hash == hash && present(c))
        .or(known.twin.filter(|t| t.hash == hash && present(t)));
    match copy_from {
        Some(from) if can.server_side_copy => Plan::Copy { from, to, adopt },
        _ => Plan::Upload { to, adopt },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Hash = [0xaa; 32];
    const B: Hash = [0xbb; 32];

    fn entry(id: i64, album: &str, name: &str, hash: Hash, state: EntryState) -> EntryRow {
        EntryRow {
            id,
            dest_id: 1,
            album: album.into(),
            name: name.into(),
            base_name: name.into(),
            hash: Some(hash),
            size: 10,
            state,
            moving_from: None,
        }
    }

    fn present(id: i64, album: &str, name: &str, hash: Hash) -> EntryRow {
        entry(id, album, name, hash, EntryState::Present)
    }

    fn reserved(id: i64, album: &str, name: &str, hash: Hash) -> EntryRow {
        entry(id, album, name, hash, EntryState::Reserved)
    }

    const FULL: Capabilities = Capabilities::ALL;
    const NO_COPY: Capabilities = Capabilities {
        server_side_copy: false,
        ..FULL
    };
    const NO_RENAME: Capabilities = Capabilities {
        rename: false,
        ..FULL
    };
    const NO_READ: Capabilities = Capabilities {
        reads_back: false,
        ..FULL
    };
    const BARE: Capabilities = Capabilities {
        server_side_copy: false,
        rename: false,
        reads_back: false,
    };

    /// One row of the table: the item `IMG.jpg` with content `hash` in
    /// album `Trip`, what the ledger knows, the destination, the plan.
    struct Case {
        what: &'static str,
        hash: Hash,
        known: Known<'static>,
        can: Capabilities,
        want: Plan<'static>,
    }

    fn leak(e: EntryRow) -> &'static EntryRow {
        Box::leak(Box::new(e))
    }

    fn known() -> Known<'static> {
        Known {
            may_wait: true,
            ..Known::default()
        }
    }

    /// The name of a plan's variant: the table must reach every one.
    fn variant(p: &Plan<'_>) -> &'static str {
        match p {
            Plan::Unchanged(_) => "unchanged",
            Plan::Link { .. } => "link",
            Plan::Wait(_) => "wait",
            Plan::FinishMove(_) => "finish move",
            Plan::Replace { .. } => "replace",
            Plan::Move(_) => "move",
            Plan::Copy { .. } => "copy",
            Plan::Upload { .. } => "upload",
        }
    }

    #[test]
    fn every_case_gets_its_plan() {
        let same = leak(present(1, "Trip", "IMG.jpg", A));
        let old_version = leak(present(1, "Trip", "IMG.jpg", B));
        let unconfirmed_here = leak(reserved(1, "Trip", "IMG.jpg", B));
        let elsewhere = leak(present(1, "Old", "IMG.jpg", A));
        let elsewhere_other = leak(present(1, "Old", "IMG.jpg", B));
        let renamed_from = leak(present(1, "Trip", "OLD.jpg", A));
        let mut moving = present(1, "Trip", "IMG.jpg", A);
        moving.state = EntryState::Reserved;
        moving.moving_from = Some(("Old".into(), "IMG.jpg".into()));
        let moving = leak(moving);
        let twin = leak(present(2, "Trip", "COPY.jpg", A));
        let mut numbered_twin = present(2, "Trip", "IMG (2).jpg", A);
        numbered_twin.base_name = "IMG.jpg".into();
        let numbered_twin = leak(numbered_twin);
        let twin_on_its_way = leak(reserved(2, "Trip", "COPY.jpg", A));
        let twin_deleting = leak(entry(2, "Trip", "COPY.jpg", A, EntryState::Deleting));
        let reservation = leak(reserved(3, "Trip", "IMG.jpg", A));

        let cases = [
            Case {
                what: "stored as it is",
                hash: A,
                known: Known {
                    current: Some(same),
                    ..known()
                },
                can: FULL,
                want: Plan::Unchanged(same),
            },
            Case {
                what: "stored as it is, on a bare destination",
                hash: A,
                known: Known {
                    current: Some(same),
                    ..known()
                },
                can: BARE,
                want: Plan::Unchanged(same),
            },
            Case {
                what: "stored as it is and shared with a twin file",
                hash: A,
                known: Known {
                    current: Some(same),
                    current_shared: true,
                    ..known()
                },
                can: FULL,
                want: Plan::Unchanged(same),
            },
            Case {
                what: "a new file whose content the album holds under another name",
                hash: A,
                known: Known {
                    twin: Some(twin),
                    ..known()
                },
                can: FULL,
                want: Plan::Copy {
                    from: twin,
                    to: Target::FreeName,
                    adopt: true,
                },
            },
            Case {
                what: "content the album holds under another name, on a destination without copy",
                hash: A,
                known: Known {
                    twin: Some(twin),
                    ..known()
                },
                can: NO_COPY,
                want: Plan::Link {
                    to: twin,
                    moved: false,
                },
            },
            Case {
                what: "a new file whose content the album holds under its own name, numbered",
                hash: A,
                known: Known {
                    twin: Some(numbered_twin),
                    ..known()
                },
                can: FULL,
                want: Plan::Link {
                    to: numbered_twin,
                    moved: false,
                },
            },
            Case {
                what: "a renamed file whose new name's content the album holds",
                hash: A,
                known: Known {
                    current: Some(renamed_from),
                    twin: Some(twin),
                    ..known()
                },
                can: FULL,
                want: Plan::Move(renamed_from),
            },
            Case {
                what: "a renamed file whose content the album holds under its new name",
                hash: A,
                known: Known {
                    current: Some(renamed_from),
                    twin: Some(numbered_twin),
                    ..known()
                },
                can: FULL,
                want: Plan::Link {
                    to: numbered_twin,
                    moved: true,
                },
            },
            Case {
                what: "an edited file whose new content the album holds under another name",
                hash: A,
                known: Known {
                    current: Some(old_version),
                    twin: Some(twin),
                    ..known()
                },
                can: FULL,
                want: Plan::Replace {
                    entry: old_version,
                    overwrite: true,
                },
            },
            Case {
                what: "content under way for another file",
                hash: A,
                known: Known {
                    twin: Some(twin_on_its_way),
                    twin_in_flight: true,
                    ..known()
                },
                can: FULL,
                want: Plan::Wait(twin_on_its_way),
            },
            Case {
                what: "content under way, but the wait for it already ended",
                hash: A,
                known: Known {
                    twin: Some(twin_on_its_way),
                    twin_in_flight: true,
                    may_wait: false,
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: true,
                },
            },
            Case {
                what: "a twin reservation that nothing is uploading (a failed upload)",
                hash: A,
                known: Known {
                    twin: Some(twin_on_its_way),
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: true,
                },
            },
            Case {
                what: "an old entry still waiting for its deletion is no twin",
                hash: A,
                known: Known {
                    twin: Some(twin_deleting),
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: true,
                },
            },
            Case {
                what: "a move that a crash interrupted",
                hash: A,
                known: Known {
                    current: Some(moving),
                    ..known()
                },
                can: FULL,
                want: Plan::FinishMove(moving),
            },
            Case {
                what: "an edited file replaces its own version",
                hash: A,
                known: Known {
                    current: Some(old_version),
                    ..known()
                },
                can: FULL,
                want: Plan::Replace {
                    entry: old_version,
                    overwrite: true,
                },
            },
            Case {
                what: "an edit on a destination without copy or rename still replaces",
                hash: A,
                known: Known {
                    current: Some(old_version),
                    ..known()
                },
                can: BARE,
                want: Plan::Replace {
                    entry: old_version,
                    overwrite: true,
                },
            },
            Case {
                what: "a replacement never confirmed does not overwrite blindly",
                hash: A,
                known: Known {
                    current: Some(unconfirmed_here),
                    ..known()
                },
                can: FULL,
                want: Plan::Replace {
                    entry: unconfirmed_here,
                    overwrite: false,
                },
            },
            Case {
                what: "an edited file shared with another file gets an entry of its own",
                hash: A,
                known: Known {
                    current: Some(old_version),
                    current_shared: true,
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a renamed file is moved on the destination",
                hash: A,
                known: Known {
                    current: Some(renamed_from),
                    ..known()
                },
                can: FULL,
                want: Plan::Move(renamed_from),
            },
            Case {
                what: "a file moved to another album is moved on the destination",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    ..known()
                },
                can: FULL,
                want: Plan::Move(elsewhere),
            },
            Case {
                what: "a move without server-side rename becomes a copy",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    ..known()
                },
                can: NO_RENAME,
                want: Plan::Copy {
                    from: elsewhere,
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a move without server-side rename or copy becomes an upload",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    ..known()
                },
                can: BARE,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a file shared with a twin and moved is copied, not moved",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    current_shared: true,
                    ..known()
                },
                can: FULL,
                want: Plan::Copy {
                    from: elsewhere,
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a shared file moved, on a destination without server-side copy",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    current_shared: true,
                    ..known()
                },
                can: NO_COPY,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a file moved to another album and edited is uploaded anew",
                hash: A,
                known: Known {
                    current: Some(elsewhere_other),
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a new file",
                hash: A,
                known: known(),
                can: FULL,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: true,
                },
            },
            Case {
                what: "a new file, on a destination that cannot read content back",
                hash: A,
                known: known(),
                can: NO_READ,
                want: Plan::Upload {
                    to: Target::FreeName,
                    adopt: false,
                },
            },
            Case {
                what: "a reservation that survived a crash is taken up again",
                hash: A,
                known: Known {
                    reservation: Some(reservation),
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::Reserved(reservation),
                    adopt: true,
                },
            },
            Case {
                what: "a surviving reservation comes before a twin that would wait",
                hash: A,
                known: Known {
                    reservation: Some(reservation),
                    twin: Some(twin_on_its_way),
                    twin_in_flight: true,
                    ..known()
                },
                can: FULL,
                want: Plan::Upload {
                    to: Target::Reserved(reservation),
                    adopt: true,
                },
            },
            Case {
                what: "a surviving reservation, on a destination that cannot read back",
                hash: A,
                known: Known {
                    reservation: Some(reservation),
                    ..known()
                },
                can: NO_READ,
                want: Plan::Upload {
                    to: Target::Reserved(reservation),
                    adopt: false,
                },
            },
            Case {
                what: "a surviving reservation of a moved file is copied into",
                hash: A,
                known: Known {
                    current: Some(elsewhere),
                    reservation: Some(reservation),
                    ..known()
                },
                can: FULL,
                want: Plan::Copy {
                    from: elsewhere,
                    to: Target::Reserved(reservation),
                    adopt: true,
                },
            },
        ];
        assert!(cases.len() >= 25);
        let mut variants = std::collections::BTreeSet::new();
        for c in cases {
            variants.insert(variant(&c.want));
            let item = Item {
                hash: c.hash,
                album: "Trip",
                base: "IMG.jpg",
            };
            assert_eq!(plan(&item, &c.known, c.can), c.want, "{}", c.what);
        }
        assert_eq!(variants.len(), 8, "every variant has a row: {variants:?}");
    }
}
