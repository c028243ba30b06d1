// Key ceremonies, as the operator runs them (`cardvault keys import`): a key brought in by clear components or
// in a TR-31 block goes into the key provider, and every ceremony — imported or refused — is an operator audit
// record: who (`operator:<name>`), the key's type, origin, id and check value, each component's check value or
// the KBPK's id and the block's public header fields, and why a refused one was refused. Invariant: no record,
// message or result carries key material; the provider checks and stores, this service tells what happened.
import { parseKeyBlockHeader } from "../crypto/tr31.js";
import { AppError } from "../domain/errors.js";
import { type ComponentCeremony, importByComponents } from "../keys/key-components.js";
import type { KeyBlockImport, KeyInfo, KeyProvider } from "../keys/key-provider.js";
import type { OperatorRecorder } from "./audit.js";
import type { AuditDetails } from "./audit-catalog.js";

export interface KeyCeremonyDeps {
  keys: Pick<KeyProvider, "importKey" | "importKeyBlock">;
  recordOperator: OperatorRecorder;
  /** NODE_ENV=production: a single component is refused. */
  production: boolean;
}

type Details = AuditDetails<"key.import">;
/** The TR-31 header's public fields, as recorded. */
type HeaderDetails = Pick<Details, "blockVersion" | "keyUsage" | "blockAlgorithm" | "modeOfUse">;

export function createKeyCeremonyService(deps: KeyCeremonyDeps) {
  /** Runs one ceremony and records it, imported or refused (details read afterwards); a refusal is rethrown. */
  async function recorded(
    operator: string,
    details: () => Details,
    run: () => Promise<KeyInfo>,
  ): Promise<KeyInfo> {
    const actor = `operator:${operator}`;
    let key: KeyInfo;
    try {
      key = await run();
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      await deps.recordOperator({
        actor,
        action: "key.import",
        outcome: "refused",
        details: { ...details(), reason: error.message },
      });
      throw error;
    }
    await deps.recordOperator({
      actor,
      action: "key.import",
      outcome: "success",
      details: { ...details(), keyId: key.id, algorithm: key.algorithm, kcv: key.kcv },
    });
    return key;
  }

  return {
    /** Components: each one's check value goes to `onComponent` (for its custodian) before they are combined. */
    importComponents(
      operator: string,
      request: Omit<ComponentCeremony, "production">,
      onComponent: (position: number, kcv: string) => void,
    ): Promise<KeyInfo> {
      const told: string[] = [];
      return recorded(
        operator,
        () => ({
          type: request.type,
          origin: "components",
          components: request.components.length,
          componentKcvs: told.join(",") || undefined,
          expectedKcv: /^[0-9A-Fa-f]{4,6}$/.test(request.kcv) ? request.kcv.toUpperCase() : undefined,
        }),
        () =>
          importByComponents(deps.keys, { ...request, production: deps.production }, (position, kcv) => {
            told.push(kcv);
            onComponent(position, kcv);
          }),
      );
    },

    importKeyBlock(operator: string, request: KeyBlockImport): Promise<KeyInfo> {
      return recorded(
        operator,
        () => ({
          type: request.type,
          origin: "tr31",
          kbpkId: request.kbpkId,
          expectedKcv:
            request.kcv && /^[0-9A-Fa-f]{4,6}$/.test(request.kcv) ? request.kcv.toUpperCase() : undefined,
          ...publicHeader(request.block),
        }),
        () => deps.keys.importKeyBlock(request),
      );
    },
  };
}

/** The header's public fields, when the block has a well-formed header; nothing of what follows it. */
function publicHeader(block: string): HeaderDetails {
  try {
    const header = parseKeyBlockHeader(block);
    return {
      blockVersion: header.version,
      keyUsage: header.keyUsage,
      blockAlgorithm: header.algorithm,
      modeOfUse: header.modeOfUse,
    };
  } catch {
    return {};
  }
}

export type KeyCeremonyService = ReturnType<typeof createKeyCeremonyService>;
