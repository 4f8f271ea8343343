//! The organization's own phone numbers.

use entity::phone_number;

use super::{auth::Caller, Error, Services};

impl Services {
    pub async fn phone_numbers(&self, caller: &Caller) -> Result<Vec<phone_number::Model>, Error> {
        Ok(self.store.phone_numbers(caller.org_id).await?)
    }
}
