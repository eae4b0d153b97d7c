//! Problems found in schema files, reported as `file:pointer: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one schema file, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file the problem is in, as the registry found it.
    pub file: PathBuf,
    /// JSON pointer to the offending value inside the file; empty for the
    /// whole file.
    pub pointer: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl Problem {
    /// A problem at `pointer` in `file`.
    pub fn new(file: &Path, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{}:{}: {}", self.file.display(), pointer, self.message)
    }
}

/// Every problem found in one pass over the schemas, sorted by file and
/// pointer so the report is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records one problem.
    pub fn push(&mut self, file: &Path, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(file, pointer, message));
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in report order.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// Sorts the problems and removes exact repeats.
    pub fn sort(&mut self) {
        self.0.sort();
        self.0.dedup();
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
