//! The organization's own phone numbers.

use super::{auth::Caller, Error, Services};
use crate::domain::organization::OwnedNumber;

impl Services {
    pub async fn phone_numbers(&self, caller: &Caller) -> Result<Vec<OwnedNumber>, Error> {
        Ok(self.tenant(caller).phone_numbers().await?)
    }
}
