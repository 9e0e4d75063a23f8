//! Namespace records (Nacos's `NamespaceController` / `NamespaceOperationService`
//! rules, 2.x): create, rename and delete the record that names a
//! namespace.
//!
//! A namespace exists while services live in it (the first registration
//! into it creates it, as on Nacos's naming side) or while it has a record.
//! The record gives it the name operators see and a description, and keeps
//! it listed while empty. Records are persistent data: the local log on a
//! standalone node, Raft in a cluster, so every member lists the same ones.
//!
//! Rules, with Nacos's limits:
//! - the id (`customNamespaceId`) is `[A-Za-z0-9_-]`, at most 128
//!   characters; when not given, a random UUID; `public` is the default
//!   namespace and never a record;
//! - the show name (`namespaceName`) is required, at most 128 characters,
//!   without `@ # $ % ^ & *` (Nacos's `namespaceNameCheckPattern`);
//! - the description, at most 256 characters (Nacos's column);
//! - a namespace that exists (with a record, or through its services) is
//!   renamed and deleted by its id whatever its characters, since a
//!   registration may have created it with any name;
//! - better than Nacos, which deletes the record and orphans what lives in
//!   the namespace: a namespace that still holds services cannot be
//!   deleted. A registration racing the deletion recreates the namespace
//!   implicitly, without a record, as any first registration does.
//!
//! Each write checks and writes under this node's namespace-write lock,
//! after a linearizable read point (in a cluster: this member has applied
//! everything the Raft leader committed before), so a check never reads a
//! stale record. A rename is applied only if the record still exists then
//! ([`crate::consistency::Write::Update`]), so one racing a deletion on
//! another member cannot bring the record back. Two creates of one id on
//! two members within the same instant both succeed, the later one's name
//! kept (as two puts of one service do).

use super::checks::{check_name, illegal, required};
use super::{NamingError, ServiceManager};
use crate::consistency::{Key, Record};
use crate::registry::model::NamespaceMeta;

/// The default namespace: never a record, never deleted.
pub const PUBLIC: &str = "public";
/// Longest namespace id, in characters (Nacos's `NAMESPACE_ID_MAX_LENGTH`).
pub const MAX_ID_LEN: usize = 128;
/// Longest show name, in characters (Nacos's `tenant_name` column).
pub const MAX_SHOW_NAME_LEN: usize = 128;
/// Longest description, in characters (Nacos's `tenant_desc` column).
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// Most namespace records a node keeps: a bound on what a caller can make
/// it hold, far above what installations use.
pub const MAX_NAMESPACES: usize = 10_000;

impl ServiceManager {
    /// Creates namespace `id` (a random UUID when `None` or blank) with its
    /// show name and description; returns its id. Fails with
    /// [`NamingError::InvalidParam`] on an illegal parameter, a record that
    /// already exists, or too many records; with the store's error when the
    /// write cannot be made durable.
    pub async fn create_namespace(
        &self,
        id: Option<&str>,
        show_name: &str,
        description: &str,
    ) -> Result<String, NamingError> {
        let _one_at_a_time = self.namespace_writes.lock().await;
        self.linearize().await?;
        let id = match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                check_id("customNamespaceId", id)?;
                id.to_string()
            }
            None => random_uuid()?,
        };
        let meta = namespace_meta(&id, ("namespaceName", show_name), description)?;
        if self.registry.namespace(&id).is_some() {
            return Err(NamingError::InvalidParam(format!(
                "the namespaceId is existed, namespaceId: {id}"
            )));
        }
        if self.registry.namespaces().len() >= MAX_NAMESPACES {
            return Err(NamingError::InvalidParam(format!(
                "too many namespaces: at most {MAX_NAMESPACES}"
            )));
        }
        self.consistency
            .put(Record::Namespace(meta), self.deadline())
            .await?;
        Ok(id)
    }

    /// Renames namespace `id` and sets its description. A namespace that
    /// lives only through its services gets a record. Fails with
    /// [`NamingError::NotFound`] when the namespace does not exist (or its
    /// record was deleted meanwhile), and [`NamingError::InvalidParam`] on an
    /// illegal parameter or `public`.
    pub async fn update_namespace(
        &self,
        id: &str,
        show_name: &str,
        description: &str,
    ) -> Result<(), NamingError> {
        check_existing_id("namespace", id)?;
        let meta = namespace_meta(id, ("namespaceShowName", show_name), description)?;
        let _one_at_a_time = self.namespace_writes.lock().await;
        self.linearize().await?;
        let not_found = || NamingError::NotFound(format!("namespace {id} is not found"));
        if self.registry.namespace(id).is_some() {
            // Only if the record is still there when the write applies.
            self.consistency
                .update(Record::Namespace(meta), self.deadline())
                .await?;
            return self
                .registry
                .namespace(id)
                .map(|_| ())
                .ok_or_else(not_found);
        }
        if self.registry.namespace_service_count(id) == 0 {
            return Err(not_found());
        }
        self.consistency
            .put(Record::Namespace(meta), self.deadline())
            .await?;
        Ok(())
    }

    /// Deletes namespace `id`'s record. Fails with
    /// [`NamingError::InvalidParam`] for `public` or while services live in
    /// it, and [`NamingError::NotFound`] when it has no record.
    pub async fn remove_namespace(&self, id: &str) -> Result<(), NamingError> {
        check_existing_id("namespaceId", id)?;
        let _one_at_a_time = self.namespace_writes.lock().await;
        self.linearize().await?;
        let services = self.registry.namespace_service_count(id);
        if services > 0 {
            return Err(NamingError::InvalidParam(format!(
                "namespace {id} still holds {services} services; delete them first"
            )));
        }
        if self.registry.namespace(id).is_none() {
            return Err(NamingError::NotFound(format!(
                "namespace {id} is not found"
            )));
        }
        self.consistency
            .remove(Key::Namespace(id.to_string()), self.deadline())
            .await?;
        Ok(())
    }
}

/// The id of a namespace that may exist: any name a registration accepts
/// (bounded, no control characters), not `public`.
fn check_existing_id(param: &str, id: &str) -> Result<(), NamingError> {
    if id.is_empty() {
        return Err(required(param));
    }
    check_name(param, id)?;
    if id == PUBLIC {
        return Err(illegal(param, "public is the default namespace"));
    }
    Ok(())
}

/// A new namespace's id: an existing one's rules, and Nacos's
/// `[A-Za-z0-9_-]+` of at most [`MAX_ID_LEN`].
fn check_id(param: &str, id: &str) -> Result<(), NamingError> {
    check_existing_id(param, id)?;
    if id.chars().count() > MAX_ID_LEN {
        return Err(illegal(
            param,
            &format!("longer than {MAX_ID_LEN} characters"),
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(illegal(
            param,
            "a namespace id can only have these characters: 0-9a-zA-Z_-",
        ));
    }
    Ok(())
}

/// The record, once the show name (given as parameter `name_param`) and
/// the description pass the rules.
fn namespace_meta(
    id: &str,
    (name_param, show_name): (&str, &str),
    description: &str,
) -> Result<NamespaceMeta, NamingError> {
    let show_name = show_name.trim();
    if show_name.is_empty() {
        return Err(required(name_param));
    }
    if show_name.chars().count() > MAX_SHOW_NAME_LEN {
        return Err(illegal(
            name_param,
            &format!("longer than {MAX_SHOW_NAME_LEN} characters"),
        ));
    }
    if show_name
        .chars()
        .any(|c| c.is_control() || "@#$%^&*".contains(c))
    {
        return Err(illegal(
            name_param,
            "must not contain control characters or any of @#$%^&*",
        ));
    }
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(illegal(
            "namespaceDesc",
            &format!("longer than {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    if description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(illegal("namespaceDesc", "contains control characters"));
    }
    Ok(NamespaceMeta {
        id: id.to_string(),
        show_name: show_name.to_string(),
        description: description.to_string(),
    })
}

/// A random (version 4) UUID in its usual text form, as Nacos names a
/// namespace created without an id.
fn random_uuid() -> Result<String, NamingError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        NamingError::Consistency(crate::consistency::ConsistencyError::Failed(format!(
            "no randomness for a namespace id: {e}"
        )))
    })?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_nacos_rules() {
        assert!(check_id("customNamespaceId", "dev-1_a").is_ok());
        for bad in ["", "a b", "dev/x", "ü", PUBLIC] {
            assert!(check_id("customNamespaceId", bad).is_err(), "{bad:?}");
        }
        assert!(check_id("customNamespaceId", &"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id("customNamespaceId", &"a".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn existing_namespaces_are_named_by_any_registrable_id() {
        assert!(check_existing_id("namespace", "dot.ns").is_ok());
        for bad in ["", PUBLIC, "a\u{1}b"] {
            assert!(check_existing_id("namespace", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn show_names_and_descriptions_are_checked() {
        assert!(namespace_meta("dev", ("n", "Dev team"), "").is_ok());
        assert!(namespace_meta("dev", ("n", "  "), "").is_err());
        assert!(namespace_meta("dev", ("n", "a#b"), "").is_err());
        assert!(namespace_meta("dev", ("n", "dev"), &"d".repeat(MAX_DESCRIPTION_LEN + 1)).is_err());
        assert!(namespace_meta("dev", ("n", "dev"), "line\u{7}").is_err());
        let meta = namespace_meta("dev", ("n", " Dev "), " two\nlines ").expect("legal");
        assert_eq!(meta.show_name, "Dev");
        assert_eq!(meta.description, "two\nlines");
        // Limits count characters: 256 three-byte characters are fine.
        assert!(namespace_meta("dev", ("n", "dev"), &"€".repeat(MAX_DESCRIPTION_LEN)).is_ok());
    }

    #[test]
    fn generated_ids_are_version_4_uuids() {
        let id = random_uuid().expect("randomness");
        assert_eq!(id.len(), 36);
        assert!(check_id("customNamespaceId", &id).is_ok());
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid().expect("randomness"));
    }
}
