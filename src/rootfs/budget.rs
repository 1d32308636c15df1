//! How much an image's layers may unpack to. A gzip layer of a few MB can inflate to
//! gigabytes of files (or of tar headers: millions of empty entries), so what the layers
//! decompress to is metered as it is read, over all the image's layers together.
//!
//! The tar reader keeps an entry's long name, long link name and PAX extensions in memory
//! whole, at whatever size their header declares; the bytes read between two entries are
//! therefore bounded on their own, at [`ENTRY_HEADERS_MAX`].

use crate::diag::Error;
use crate::limits::{UNPACKED_VAR, format_size};
use std::cell::Cell;
use std::io::{self, Read};

/// The headers of one tar entry: its header blocks, long names and PAX extensions, which
/// real images keep to a few KiB.
pub const ENTRY_HEADERS_MAX: u64 = 1 << 20;

/// What ran out, once something did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Total,
    Headers,
}

/// The unpacked bytes an image may still take, shared by the meter and the unpacker.
pub struct Budget {
    limit: u64,
    used: Cell<u64>,
    /// Where the headers of the entry being read began, while they are read.
    headers_from: Cell<Option<u64>>,
    over: Cell<Option<Over>>,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Cell::new(0),
            headers_from: Cell::new(None),
            over: Cell::new(None),
        }
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used.get())
    }

    /// The next entry of `entries`: what the tar reader reads to find it are its headers,
    /// which it keeps whole in memory, so they are metered against a budget of their own.
    pub fn next_entry<'a, R: std::io::Read>(
        &self,
        entries: &mut tar::Entries<'a, R>,
    ) -> Option<std::io::Result<tar::Entry<'a, R>>> {
        self.headers_begin();
        let next = entries.next();
        self.headers_from.set(None);
        next
    }

    /// What the tar reader reads from now on are the headers of the next entry.
    fn headers_begin(&self) {
        self.headers_from.set(Some(self.used.get()));
    }

    /// The error that explains an unpacking stopped by the meter, if the meter stopped it.
    pub fn exceeded(&self) -> Option<Error> {
        self.over.get().map(|over| match over {
            Over::Total => self.over_total(),
            Over::Headers => Error::msg(format!(
                "a tar entry's headers (name, link name, PAX extensions) take more than {}, \
                 the limit of one entry's headers",
                format_size(ENTRY_HEADERS_MAX)
            )),
        })
    }

    /// The image would unpack to more than the limit: `entry`'s header said so, before any
    /// of it was written (the meter itself never got that far).
    pub fn over_total_at(&self, entry: &str, size: u64) -> Error {
        self.over_total()
            .context(format!("entry {entry} ({size} bytes)"))
    }

    fn over_total(&self) -> Error {
        let doubled = self.limit.saturating_mul(2);
        Error::msg(format!(
            "the image unpacks to more than {}, the limit of an unpacked image ({UNPACKED_VAR})",
            format_size(self.limit)
        ))
        .hint(format!(
            "if the image is trusted, raise the limit: {UNPACKED_VAR}={} (bytes, or a size with K, M, G or T)",
            format_size(doubled).replace(" bytes", "").replace(' ', "")
        ))
    }

    fn charge(&self, n: usize) -> io::Result<()> {
        let used = self.used.get() + n as u64;
        self.used.set(used);
        let over = if used > self.limit {
            Some(Over::Total)
        } else if self
            .headers_from
            .get()
            .is_some_and(|from| used - from > ENTRY_HEADERS_MAX)
        {
            Some(Over::Headers)
        } else {
            None
        };
        match over {
            Some(over) => {
                self.over.set(Some(over));
                Err(io::Error::other("over the unpacked-size limit"))
            }
            None => Ok(()),
        }
    }
}

/// A reader charging what passes through it to a [`Budget`]: it fails past the budget, so
/// nothing past it is read, decompressed or written.
pub struct Metered<'a, R> {
    pub inner: R,
    pub budget: &'a Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.charge(n)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(budget: &Budget, bytes: usize) -> io::Result<u64> {
        let mut meter = Metered {
            inner: io::repeat(0).take(bytes as u64),
            budget,
        };
        io::copy(&mut meter, &mut io::sink())
    }

    #[test]
    fn the_budget_is_shared_by_every_read_and_stops_past_it() {
        let budget = Budget::new(100);
        assert_eq!(drain(&budget, 60).unwrap(), 60);
        assert_eq!(budget.remaining(), 40);
        assert_eq!(drain(&budget, 40).unwrap(), 40, "exactly the limit is fine");
        assert!(budget.exceeded().is_none());
        assert!(drain(&budget, 1).is_err());
        let err = budget.exceeded().unwrap().to_string();
        assert_eq!(
            err,
            "error: the image unpacks to more than 100 bytes, the limit of an unpacked image (SEALER_MAX_UNPACKED)"
        );
        let exceeded = budget.exceeded().unwrap();
        let hint = &exceeded.diagnostics()[0].hints[0];
        assert!(hint.contains("SEALER_MAX_UNPACKED=200 "), "{hint}");
    }

    #[test]
    fn an_entry_that_does_not_fit_is_named() {
        let budget = Budget::new(crate::limits::GIB);
        let err = budget.over_total_at("big.img", 2 << 30).to_string();
        assert!(
            err.starts_with(
                "error: entry big.img (2147483648 bytes): the image unpacks to more than 1 GiB"
            ),
            "{err}"
        );
        assert!(
            budget.exceeded().is_none(),
            "the meter did not stop anything"
        );
    }

    #[test]
    fn headers_are_bounded_on_their_own() {
        let budget = Budget::new(u64::MAX);
        drain(&budget, 10 << 20).unwrap();
        budget.headers_begin();
        drain(&budget, ENTRY_HEADERS_MAX as usize).unwrap();
        assert!(drain(&budget, 1).is_err());
        assert!(
            budget
                .exceeded()
                .unwrap()
                .to_string()
                .contains("the limit of one entry's headers")
        );
    }
}
