//! What a request touches and what it needs, and whether a permission
//! covers it.
//!
//! A naming request's resource is Nacos 2.x's text form
//! `<namespace>:<group>:naming/<service>` (`NacosRoleServiceImpl.joinResource`):
//! the namespace left empty when it is `public` (alibaba/nacos#10347), a
//! blank group `*`, no service `naming/*`. Stored permissions are patterns
//! of the same form where `*` matches any run of characters — a glob, not
//! Nacos's regex (there a `.` in a stored name matches any character).

use crate::accounts::{ADMIN_ROLE, Action, Tables};
use crate::registry::model::{DEFAULT_NAMESPACE, GROUP_SEPARATOR};

/// What a route or gRPC request needs of its caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Need {
    /// Any signed-in user (the route decides the rest, e.g. a password change).
    SignedIn,
    /// `action` on `resource`.
    Naming {
        /// Read or write.
        action: Action,
        /// The resource text.
        resource: String,
    },
    /// The global admin (user and permission management, switches, plugins).
    Admin,
}

/// The resource text of a naming request.
pub fn naming_resource(namespace: &str, group: Option<&str>, service: Option<&str>) -> String {
    let namespace = if namespace == DEFAULT_NAMESPACE {
        ""
    } else {
        namespace
    };
    let group = group.filter(|g| !g.trim().is_empty()).unwrap_or("*");
    let service = service.filter(|s| !s.trim().is_empty()).unwrap_or("*");
    // Built by hand: it is made for every guarded request, and `format!`
    // costs several times as much.
    const NAMING: &str = ":naming/";
    let mut resource =
        String::with_capacity(namespace.len() + 1 + group.len() + NAMING.len() + service.len());
    resource.push_str(namespace);
    resource.push(':');
    resource.push_str(group);
    resource.push_str(NAMING);
    resource.push_str(service);
    resource
}

/// What a naming request needs: `action` on the service its parameters
/// name, read leniently (a malformed name is refused by the operation itself,
/// once allowed). Both doors (v1 HTTP parameters, v2 gRPC request bodies)
/// name a service the same way: `namespace` (blank → `public`), and
/// `service_name` either `group@@name` or a bare name whose group is
/// `group_name` (Nacos `NamingUtils.getGroupName`); no service name means
/// every service of the group.
pub fn naming_need(
    action: Action,
    namespace: Option<&str>,
    group_name: Option<&str>,
    service_name: Option<&str>,
) -> Need {
    let namespace = namespace
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE);
    let (group, service) = match service_name.map(|s| s.split_once(GROUP_SEPARATOR)) {
        Some(Some((group, name))) => (Some(group), Some(name)),
        _ => (group_name, service_name),
    };
    Need::Naming {
        action,
        resource: naming_resource(namespace, group, service),
    }
}

/// Whether `username` may do what `need` asks, by the tables.
pub fn allowed(tables: &Tables, username: &str, need: &Need) -> bool {
    if tables.user(username).is_none() {
        return false;
    }
    if tables.is_admin(username) {
        return true;
    }
    match need {
        Need::SignedIn => true,
        Need::Admin => false,
        Need::Naming { action, resource } => tables
            .roles_of(username)
            .filter(|role| *role != ADMIN_ROLE)
            .flat_map(|role| tables.permissions_of(role))
            .any(|p| p.action.allows(*action) && glob_matches(&p.resource, resource)),
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (including none) and everything else matches itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountChange, Permission};

    #[test]
    fn resources_read_like_nacos_2() {
        assert_eq!(
            naming_resource("public", Some("DEFAULT_GROUP"), Some("orders")),
            ":DEFAULT_GROUP:naming/orders"
        );
        assert_eq!(naming_resource("dev", None, None), "dev:*:naming/*");
        assert_eq!(
            naming_resource("dev", Some(" "), Some("")),
            "dev:*:naming/*"
        );
    }

    #[test]
    fn both_doors_name_a_service_the_same_way() {
        let need =
            |namespace, group, service| match naming_need(Action::Write, namespace, group, service)
            {
                Need::Naming { action, resource } => {
                    assert_eq!(action, Action::Write);
                    resource
                }
                other => panic!("not a naming need: {other:?}"),
            };
        assert_eq!(need(None, None, Some("G@@orders")), ":G:naming/orders");
        assert_eq!(
            need(Some(" "), Some("G"), Some("orders")),
            ":G:naming/orders"
        );
        assert_eq!(need(Some("dev"), Some("H"), Some("G@@s")), "dev:G:naming/s");
        assert_eq!(need(Some("dev"), Some("G"), None), "dev:G:naming/*");
        assert_eq!(need(Some("public"), None, Some("s")), ":*:naming/s");
    }

    #[test]
    fn stars_match_any_run_and_dots_are_literal() {
        assert!(glob_matches(":*:*", ":DEFAULT_GROUP:naming/orders"));
        assert!(glob_matches("dev:*:*", "dev:G:naming/x"));
        assert!(!glob_matches("dev:*:*", "prod:G:naming/x"));
        assert!(!glob_matches(":*:*", "dev:G:naming/x"));
        assert!(glob_matches(":G:naming/order*", ":G:naming/orders"));
        assert!(!glob_matches(":G:naming/a.b", ":G:naming/axb"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("", "x"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-b-b-d"));
    }

    #[test]
    fn permissions_go_through_roles_and_admin_passes_everything() {
        let mut tables = Tables::default();
        for (user, role) in [("ann", "reader"), ("root", ADMIN_ROLE)] {
            tables.apply(AccountChange::CreateUser {
                username: user.into(),
                password_hash: "h".into(),
            });
            tables.apply(AccountChange::BindRole {
                role: role.into(),
                username: user.into(),
            });
        }
        tables.apply(AccountChange::Grant(Permission {
            role: "reader".into(),
            resource: ":*:*".into(),
            action: Action::Read,
        }));
        let read = Need::Naming {
            action: Action::Read,
            resource: ":G:naming/s".into(),
        };
        let write = Need::Naming {
            action: Action::Write,
            resource: ":G:naming/s".into(),
        };
        assert!(allowed(&tables, "ann", &read));
        assert!(!allowed(&tables, "ann", &write));
        assert!(!allowed(&tables, "ann", &Need::Admin));
        assert!(allowed(&tables, "root", &write));
        assert!(allowed(&tables, "root", &Need::Admin));
        assert!(!allowed(&tables, "ghost", &Need::SignedIn));
    }
}
