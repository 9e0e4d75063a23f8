//! What a push filter may answer: a selection of the instances it was
//! offered, each at most once, in any order, with new weights — nothing it
//! was not offered. Only the weight is taken from the answer; every other
//! field is the registry's, so a filter cannot change an instance's address,
//! health or metadata on its way to a client.

use std::collections::HashMap;

use super::bindings::wit;
use super::error::{AnswerError, printable};
use crate::registry::model::{Instance, InstanceId, MAX_WEIGHT};

/// Longest excerpt of an instance's name in an error, in bytes.
const MAX_NAME_IN_ERROR: usize = 128;

/// The instances a filter answered, as the registry holds them with the
/// answer's weights, or why the answer is refused. Checked: no more
/// instances than offered, each one offered, none twice, weights finite and
/// within 0–[`MAX_WEIGHT`].
pub fn check(
    offered: &[Instance],
    answer: Vec<wit::Instance>,
) -> Result<Vec<Instance>, AnswerError> {
    if answer.len() > offered.len() {
        return Err(AnswerError::TooMany {
            returned: answer.len(),
            offered: offered.len(),
        });
    }
    let index: HashMap<&InstanceId, usize> = offered
        .iter()
        .enumerate()
        .map(|(i, o)| (&o.id, i))
        .collect();
    let mut taken = vec![false; offered.len()];
    answer
        .into_iter()
        .map(|returned| {
            let id = InstanceId::new(returned.cluster, returned.ip, returned.port);
            let Some(&at) = index.get(&id) else {
                return Err(AnswerError::NotOffered(describe(&id)));
            };
            if std::mem::replace(&mut taken[at], true) {
                return Err(AnswerError::Duplicate(describe(&id)));
            }
            if !returned.weight.is_finite() || !(0.0..=MAX_WEIGHT).contains(&returned.weight) {
                return Err(AnswerError::BadWeight {
                    weight: returned.weight,
                    instance: describe(&id),
                    max: MAX_WEIGHT,
                });
            }
            let mut instance = offered[at].clone();
            instance.weight = returned.weight;
            Ok(instance)
        })
        .collect()
}

fn describe(id: &InstanceId) -> String {
    printable(
        &format!("{}:{} (cluster {})", id.ip, id.port, id.cluster),
        MAX_NAME_IN_ERROR,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::instance_to_wit;

    fn instance(ip: &str) -> Instance {
        Instance {
            metadata: [("zone".to_string(), "a".to_string())]
                .into_iter()
                .collect(),
            ..Instance::for_test(ip, 80, 0)
        }
    }

    #[test]
    fn a_reordered_reweighted_subset_is_taken_with_the_registrys_fields() {
        let offered = vec![
            instance("10.0.0.1"),
            instance("10.0.0.2"),
            instance("10.0.0.3"),
        ];
        let mut second = instance_to_wit(&offered[1]);
        second.weight = 5.0;
        second.healthy = false;
        second.metadata.clear();
        let answer = vec![second, instance_to_wit(&offered[0])];
        let taken = check(&offered, answer).expect("valid");
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].id, offered[1].id);
        assert_eq!(taken[0].weight, 5.0);
        assert!(taken[0].healthy, "only the weight comes from the answer");
        assert_eq!(taken[0].metadata, offered[1].metadata);
        assert_eq!(check(&offered, Vec::new()), Ok(Vec::new()));
    }

    #[test]
    fn every_broken_rule_is_refused() {
        let offered = vec![instance("10.0.0.1"), instance("10.0.0.2")];
        let first = instance_to_wit(&offered[0]);
        let dup = check(&offered, vec![first.clone(), first.clone()]);
        assert!(matches!(dup, Err(AnswerError::Duplicate(_))), "{dup:?}");

        let mut stranger = first.clone();
        stranger.port = 81;
        let refused = check(&offered, vec![stranger]);
        assert!(matches!(refused, Err(AnswerError::NotOffered(_))));

        let mut other_cluster = first.clone();
        other_cluster.cluster = "OTHER".into();
        assert!(matches!(
            check(&offered, vec![other_cluster]),
            Err(AnswerError::NotOffered(_))
        ));

        let too_many = vec![first.clone(); 3];
        assert_eq!(
            check(&offered, too_many),
            Err(AnswerError::TooMany {
                returned: 3,
                offered: 2
            })
        );
        for weight in [f64::NAN, f64::INFINITY, -1.0, MAX_WEIGHT + 1.0] {
            let mut heavy = first.clone();
            heavy.weight = weight;
            assert!(matches!(
                check(&offered, vec![heavy]),
                Err(AnswerError::BadWeight { .. })
            ));
        }
    }

    #[test]
    fn an_error_names_the_instance_briefly_and_on_one_line() {
        let offered = vec![instance("10.0.0.1")];
        let mut forged = instance_to_wit(&offered[0]);
        forged.ip = format!("evil\nINFO forged line {}", "x".repeat(10_000));
        let Err(AnswerError::NotOffered(name)) = check(&offered, vec![forged]) else {
            panic!("refused as not offered");
        };
        assert!(name.len() <= MAX_NAME_IN_ERROR + 3);
        assert!(!name.contains('\n'));
    }
}
