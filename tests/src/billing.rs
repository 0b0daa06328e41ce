//! What DynamoDB bills for the writes to a table's global secondary
//! indexes, worked out from the table's stream: a request names the
//! table's writes, and DynamoDB makes (and bills) index writes besides
//! them, by rules that depend on what each write changed. The cost model
//! (`tests/benchmarks/src/bin/cost_model.rs`) reads a flow's stream
//! records and prices them here.

use std::collections::BTreeMap;

use serde_json::Value;

/// An item as the stream shows it: attribute name → DynamoDB JSON value.
pub type Image = serde_json::Map<String, Value>;

/// DynamoDB's size of an attribute value in its JSON form (names plus values,
/// the billing rule).
pub fn json_value_size(v: &Value) -> usize {
    let Some((kind, v)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), v) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => n.len().div_ceil(2) + 1,
        ("B", Value::String(b)) => b.len() * 3 / 4,
        ("BOOL" | "NULL", _) => 1,
        ("L", Value::Array(l)) => 3 + l.iter().map(|v| 1 + json_value_size(v)).sum::<usize>(),
        ("M", Value::Object(m)) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + json_value_size(v))
                .sum::<usize>()
        }
        ("SS", Value::Array(l)) => l.iter().map(|s| s.as_str().map_or(0, str::len)).sum(),
        ("NS", Value::Array(l)) => l
            .iter()
            .map(|s| s.as_str().map_or(0, |n| n.len().div_ceil(2) + 1))
            .sum(),
        _ => 0,
    }
}

/// DynamoDB's size of an item: its names plus its values.
pub fn image_size(image: &Image) -> usize {
    image
        .iter()
        .map(|(k, v)| k.len() + json_value_size(v))
        .sum()
}

/// Write units of one write of `size` bytes: ⌈size / 1 KB⌉, at least 1.
fn units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Write units of one write of `image`.
pub fn image_units(image: &Image) -> f64 {
    units(image_size(image))
}

/// A global secondary index, as far as its write cost goes.
#[derive(Debug)]
pub struct Index {
    /// Its name.
    pub name: String,
    /// Its partition key and, if it has one, its sort key.
    pub keys: Vec<String>,
    /// The attributes it copies besides the keys; `None` for `ALL`.
    pub projected: Option<Vec<String>>,
}

impl Index {
    /// Whether the item has an entry in the index (it has the index's keys).
    pub fn holds(&self, image: &Image) -> bool {
        self.keys.iter().all(|k| image.contains_key(k))
    }

    /// The index's entry for an item: what DynamoDB writes to it.
    pub fn entry(&self, image: &Image, table_keys: &[String]) -> Image {
        match &self.projected {
            None => image.clone(),
            Some(extra) => image
                .iter()
                .filter(|(k, _)| {
                    self.keys.contains(k) || table_keys.contains(k) || extra.contains(k)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The write units one change of an item costs in one index, by
/// DynamoDB's rules for global secondary indexes: an item that enters or
/// leaves the index is one write; one whose key in the index changes is
/// two (the old entry deleted, the new one put); one whose projected
/// attributes change is one; any other change costs the index nothing.
/// Each write is ⌈entry size / 1 KB⌉ units.
pub fn index_writes(
    index: &Index,
    table_keys: &[String],
    old: Option<&Image>,
    new: Option<&Image>,
) -> f64 {
    let old = old.filter(|i| index.holds(i));
    let new = new.filter(|i| index.holds(i));
    match (old, new) {
        (None, None) => 0.0,
        (None, Some(n)) => image_units(&index.entry(n, table_keys)),
        (Some(o), None) => image_units(&index.entry(o, table_keys)),
        (Some(o), Some(n)) => {
            let (o, n) = (index.entry(o, table_keys), index.entry(n, table_keys));
            if index.keys.iter().any(|k| o.get(k) != n.get(k)) {
                image_units(&o) + image_units(&n)
            } else if o != n {
                image_units(&o).max(image_units(&n))
            } else {
                0.0
            }
        }
    }
}

/// What the changes a flow made weigh, in the table and in its indexes.
#[derive(Debug, Default)]
pub struct WriteBill {
    /// Index write units by index.
    pub by_index: BTreeMap<String, f64>,
    /// Changes seen in the stream (inserts, modifications, deletes).
    pub changes: u64,
    /// Σ over the changes of ⌈larger of the item before and after / 1 KB⌉:
    /// what each change costs the table as one plain write (DynamoDB
    /// bills an update by the larger of the two).
    pub table_units: f64,
    /// The largest item the flow wrote, in bytes.
    pub largest_item: usize,
    /// Changes of items written before the flow, whose earlier image the
    /// stream did not show: counted as one write in each index that holds
    /// the item (the fewest such a change can cost; two if it moved a key).
    pub unknown_before: u64,
}

impl WriteBill {
    /// Write units in all indexes.
    pub fn index_total(&self) -> f64 {
        self.by_index.values().sum()
    }

    /// The mean write units of one table write in the flow (1 when the
    /// stream showed nothing).
    pub fn units_per_write(&self) -> f64 {
        if self.changes == 0 {
            1.0
        } else {
            self.table_units / self.changes as f64
        }
    }
}

/// Prices a flow's stream records in the table and in every index. The
/// table's stream carries new images only, so each change's old image is
/// the previous record's new image of that item.
pub fn write_bill(records: &[Value], indexes: &[Index], table_keys: &[String]) -> WriteBill {
    let mut bill = WriteBill::default();
    let mut images: std::collections::HashMap<String, Image> = std::collections::HashMap::new();
    for record in records {
        let change = &record["dynamodb"];
        let key = change["Keys"].to_string();
        let new = change["NewImage"].as_object().cloned();
        let old = match change["OldImage"].as_object() {
            Some(old) => Some(old.clone()),
            None => images.get(&key).cloned(),
        };
        if old.is_none() && record["eventName"] != "INSERT" {
            bill.unknown_before += 1;
        }
        bill.changes += 1;
        let largest = old
            .iter()
            .chain(new.iter())
            .map(image_size)
            .max()
            .unwrap_or(0);
        bill.table_units += units(largest);
        bill.largest_item = bill.largest_item.max(largest);
        for index in indexes {
            *bill.by_index.entry(index.name.clone()).or_default() +=
                index_writes(index, table_keys, old.as_ref(), new.as_ref());
        }
        match new {
            Some(n) => images.insert(key, n),
            None => images.remove(&key),
        };
    }
    bill
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn image(v: Value) -> Image {
        v.as_object().unwrap().clone()
    }

    fn all(name: &str, keys: &[&str]) -> Index {
        Index {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            projected: None,
        }
    }

    fn table_keys() -> Vec<String> {
        vec!["pk".into(), "sk".into()]
    }

    fn message(status: &str, sort: &str, text: &str) -> Image {
        image(json!({
            "pk": {"S": "PRACTICE#p"}, "sk": {"S": "MSG#1"},
            "gsi1pk": {"S": "PRACTICE#p"}, "gsi1sk": {"S": sort},
            "gsi2pk": {"S": format!("PRACTICE#p#direct_message#{status}")}, "gsi2sk": {"S": sort},
            "status": {"S": status}, "text": {"S": text},
        }))
    }

    #[test]
    fn sizes_follow_the_billing_rule() {
        // "ab" (2) + "hello" (5); "n" (1) + 3 digits → 2 bytes + 1.
        assert_eq!(
            image_size(&image(json!({"ab": {"S": "hello"}, "n": {"N": "123"}}))),
            7 + 4
        );
        assert_eq!(
            json_value_size(&json!({"M": {"k": {"S": "v"}}})),
            3 + 1 + 1 + 1
        );
        assert_eq!(image_units(&message("queued", "t", "")), 1.0);
        assert_eq!(image_units(&message("queued", "t", &"x".repeat(1500))), 2.0);
    }

    #[test]
    fn a_new_item_is_one_write_in_each_index_that_holds_it() {
        let new = message("queued", "t1", "hi");
        let by_status = all("ByStatus", &["gsi2pk", "gsi2sk"]);
        let inbox = all("Inbox", &["cgsi1pk", "csk"]);
        assert_eq!(
            index_writes(&by_status, &table_keys(), None, Some(&new)),
            1.0
        );
        assert_eq!(index_writes(&inbox, &table_keys(), None, Some(&new)), 0.0);
        assert_eq!(
            index_writes(&by_status, &table_keys(), Some(&new), None),
            1.0
        );
    }

    #[test]
    fn a_changed_index_key_is_two_writes_and_a_changed_attribute_one() {
        let queued = message("queued", "t1", "hi");
        let sending = message("sending", "t1", "hi");
        let by_status = all("ByStatus", &["gsi2pk", "gsi2sk"]);
        let by_time = all("ByTime", &["gsi1pk", "gsi1sk"]);
        assert_eq!(
            index_writes(&by_status, &table_keys(), Some(&queued), Some(&sending)),
            2.0
        );
        assert_eq!(
            index_writes(&by_time, &table_keys(), Some(&queued), Some(&sending)),
            1.0
        );
        assert_eq!(
            index_writes(&by_time, &table_keys(), Some(&queued), Some(&queued)),
            0.0
        );
    }

    #[test]
    fn a_keys_only_index_ignores_other_attributes() {
        let by_time = Index {
            projected: Some(vec![]),
            ..all("ByTime", &["gsi1pk", "gsi1sk"])
        };
        let queued = message("queued", "t1", "hi");
        assert_eq!(
            index_writes(
                &by_time,
                &table_keys(),
                Some(&queued),
                Some(&message("sent", "t1", "hi"))
            ),
            0.0
        );
        assert_eq!(
            index_writes(
                &by_time,
                &table_keys(),
                Some(&queued),
                Some(&message("sent", "t2", "hi"))
            ),
            2.0
        );
        // An included attribute counts again.
        let with_status = Index {
            projected: Some(vec!["status".into()]),
            ..all("ByTime", &["gsi1pk", "gsi1sk"])
        };
        assert_eq!(
            index_writes(
                &with_status,
                &table_keys(),
                Some(&queued),
                Some(&message("sent", "t1", "hi"))
            ),
            1.0
        );
    }

    #[test]
    fn a_stream_of_new_images_is_priced_change_by_change() {
        let record = |event: &str, new: Option<Image>| {
            let mut change = json!({"Keys": {"pk": {"S": "PRACTICE#p"}, "sk": {"S": "MSG#1"}}});
            if let Some(n) = new {
                change["NewImage"] = Value::Object(n);
            }
            json!({"eventName": event, "dynamodb": change})
        };
        let records = vec![
            record("INSERT", Some(message("queued", "t1", "hi"))),
            record("MODIFY", Some(message("sending", "t2", "hi"))),
            record("MODIFY", Some(message("sent", "t2", "hi"))),
            record("REMOVE", None),
        ];
        let indexes = [
            all("ByTime", &["gsi1pk", "gsi1sk"]),
            all("ByStatus", &["gsi2pk", "gsi2sk"]),
        ];
        let bill = write_bill(&records, &indexes, &table_keys());
        // ByTime: put 1, sort key moved 2, status changed 1, delete 1.
        // ByStatus: put 1, key moved 2, key moved 2, delete 1.
        assert_eq!(bill.by_index["ByTime"], 5.0);
        assert_eq!(bill.by_index["ByStatus"], 6.0);
        assert_eq!(
            (bill.changes, bill.unknown_before, bill.index_total()),
            (4, 0, 11.0)
        );
        assert_eq!((bill.table_units, bill.units_per_write()), (4.0, 1.0));
        // A change to an item the stream never showed before.
        let older = write_bill(&records[2..3], &indexes, &table_keys());
        assert_eq!(older.unknown_before, 1);
        assert_eq!(older.index_total(), 2.0);
        // An update is billed by the larger image: shrinking a 1.5 KB
        // item still costs 2 units.
        let shrunk = write_bill(
            &[
                record("INSERT", Some(message("sent", "t2", &"x".repeat(1500)))),
                record("MODIFY", Some(message("sent", "t2", "hi"))),
            ],
            &indexes,
            &table_keys(),
        );
        assert_eq!(shrunk.table_units, 4.0);
        assert!(shrunk.largest_item > 1500);
    }
}
