//! "Is this dialog in state X?" predicates, for router filters.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Dialogue;
use crate::Result;

type Predicate<S> = Arc<dyn Fn(Option<&S>) -> bool + Send + Sync>;

/// A test on a dialog's current state (`None` = no state), cheap to clone.
///
/// ```
/// use trueconf_bot::fsm::StateFilter;
///
/// #[derive(Clone)]
/// enum Form { Name, Age { name: String } }
///
/// let age = StateFilter::new(|s: &Form| matches!(s, Form::Age { .. }));
/// assert!(age.matches(Some(&Form::Age { name: "Ann".into() })));
/// assert!(!age.matches(Some(&Form::Name)));
/// assert!(!age.matches(None));
/// assert!(StateFilter::<Form>::none().matches(None));
/// assert!(StateFilter::any().matches(Some(&Form::Name)));
/// ```
pub struct StateFilter<S> {
    test: Predicate<S>,
}

impl<S> Clone for StateFilter<S> {
    fn clone(&self) -> Self {
        Self {
            test: self.test.clone(),
        }
    }
}

impl<S> fmt::Debug for StateFilter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateFilter")
    }
}

impl<S: 'static> std::ops::Not for StateFilter<S> {
    type Output = Self;

    /// Passes when this filter does not.
    fn not(self) -> Self {
        Self::from_fn(move |s| !(self.test)(s))
    }
}

impl<S: 'static> StateFilter<S> {
    /// Passes when the dialog has a state and `f` accepts it.
    pub fn new(f: impl Fn(&S) -> bool + Send + Sync + 'static) -> Self {
        Self::from_fn(move |s| s.is_some_and(&f))
    }

    /// Passes on any state, but not on "no state".
    pub fn any() -> Self {
        Self::from_fn(|s| s.is_some())
    }

    /// Passes only when the dialog has no state.
    pub fn none() -> Self {
        Self::from_fn(|s| s.is_none())
    }

    /// Passes when the state equals `state`.
    pub fn equals(state: S) -> Self
    where
        S: PartialEq + Send + Sync,
    {
        Self::new(move |s| *s == state)
    }

    /// A filter over the optional state, for tests `new`/`any`/`none` do not cover.
    pub fn from_fn(f: impl Fn(Option<&S>) -> bool + Send + Sync + 'static) -> Self {
        Self { test: Arc::new(f) }
    }

    /// Passes when either filter passes.
    pub fn or(self, other: Self) -> Self {
        Self::from_fn(move |s| (self.test)(s) || (other.test)(s))
    }

    /// Tests a state.
    pub fn matches(&self, state: Option<&S>) -> bool {
        (self.test)(state)
    }

    /// Reads `dialogue`'s state and tests it. An undecodable state is an error, not a
    /// mismatch, so the dispatcher can report it and reset the dialog.
    pub async fn check(&self, dialogue: &Dialogue<S>) -> Result<bool>
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync,
    {
        Ok(self.matches(dialogue.get().await?.as_ref()))
    }
}
