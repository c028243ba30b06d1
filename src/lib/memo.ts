// A value per key, made on first use and kept: for what is built once per key and used on hot paths (a metric's
// observer per label set, a key's cipher or generator). Keys must be few and bounded (route templates, key ids):
// nothing is ever evicted.
export function memo<K, V>(make: (key: K) => V): (key: K) => V {
  const made = new Map<K, V>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) {
      value = make(key);
      made.set(key, value);
    }
    return value;
  };
}
