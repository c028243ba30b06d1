// A key ceremony by clear components (dual control, PCI PIN): two or three custodians each hold one component
// of the key; each component's own check value is shown to its custodian before they are combined (XOR), and
// the combined key goes into the provider only if its check value equals the one the key's sender published.
// Invariants: a component of the wrong length, or a TDES component without odd parity in every byte (how a
// mistyped hex digit shows), is refused before anything is combined, naming the component by its position;
// every buffer holding a component or the combined key is wiped whatever happens; outside development a
// single component (one person knowing the whole key) is refused.
import { keyCheckValue } from "../crypto/kcv.js";
import { AppError } from "../domain/errors.js";
import { importedFamily, type KeyFamily } from "./key-import.js";
import type { KeyInfo, KeyProvider, KeyType } from "./key-provider.js";

export interface ComponentCeremony {
  type: KeyType;
  components: Buffer[];
  /** The combined key's published check value (4 or 6 hex digits). */
  kcv: string;
  algorithm?: KeyFamily;
  /** NODE_ENV=production: at least two components. */
  production: boolean;
}

const invalid = (message: string) =>
  new AppError("validation_failed", message, { fields: { component: [message] } });

function hasOddParity(byte: number): boolean {
  let ones = 0;
  for (let b = byte; b; b >>= 1) ones += b & 1;
  return ones % 2 === 1;
}

/** Checks the components against the type and returns each one's check value (3 bytes), in order. */
export function componentCheckValues(request: Omit<ComponentCeremony, "kcv">): string[] {
  const { components } = request;
  const fewest = request.production ? 2 : 1;
  if (components.length < fewest || components.length > 3) {
    throw invalid(
      request.production
        ? "Give two or three components (one custodian each); a single component is refused in production."
        : "Give one to three components (two or three in production).",
    );
  }
  const length = components[0]!.length;
  const family = importedFamily(request.type, length, request.algorithm);
  return components.map((component, i) => {
    if (component.length !== length) {
      throw invalid(`Component ${i + 1} is ${component.length} bytes; component 1 is ${length}.`);
    }
    // Parity is checked, not set: a custodian's component carries odd parity, so a mistyped digit shows here.
    if (family === "tdes" && !component.every(hasOddParity)) {
      throw invalid(
        `Component ${i + 1} does not have odd parity in every byte: check it for a mistyped digit.`,
      );
    }
    return keyCheckValue(component, family, 3);
  });
}

/**
 * The ceremony: check the components, tell each one's check value (`onComponent`, before combining), combine
 * them and import the key with `kcv` checked by the provider (odd parity is set on the combined key: the XOR of
 * two odd-parity components has even parity). Returns the key as listed.
 */
export async function importByComponents(
  keys: Pick<KeyProvider, "importKey">,
  request: ComponentCeremony,
  onComponent: (position: number, kcv: string) => void,
): Promise<KeyInfo> {
  const combined = Buffer.alloc(request.components[0]?.length ?? 0);
  try {
    const checkValues = componentCheckValues(request);
    for (const [i, kcv] of checkValues.entries()) onComponent(i + 1, kcv);
    for (const component of request.components) {
      for (let i = 0; i < combined.length; i++) combined[i] = combined[i]! ^ component[i]!;
    }
    return await keys.importKey({
      type: request.type,
      material: combined,
      origin: "components",
      algorithm: request.algorithm,
      kcv: request.kcv,
    });
  } finally {
    combined.fill(0);
    for (const component of request.components) component.fill(0);
  }
}
