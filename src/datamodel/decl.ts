// The shape of the API declarations in classes/*.ts: the XenAPI datamodel as plain data.

export type Qualifier = 'RW' | 'RO/constructor' | 'RO/runtime' | 'StaticRO' | 'DynamicRO';

export interface FieldDecl {
  name: string;
  /** xapi's spelling of the type, e.g. `VM ref set`, `(string -> string) map`. */
  type: string;
  qualifier: Qualifier;
  release: string;
  /** xapi's printed default, e.g. `{}`, `""`, `OpaqueRef:NULL`, `0.`. */
  default?: string;
  removed?: string;
}

/** Facts of a parameter beyond its name and type: the release that added it (when later
 * than its message's) and xapi's default, which lets a caller leave it out. */
export interface ParamFacts {
  release?: string;
  default?: unknown;
}

export interface MessageDecl {
  name: string;
  params: ReadonlyArray<readonly [string, string] | readonly [string, string, ParamFacts]>;
  result: string;
  release: string;
  errors?: readonly string[];
  removed?: string;
}

export interface GenericDecl {
  release: string;
  removed?: string;
}

export type GenericName = 'get_record' | 'get_all' | 'get_all_records' | 'get_by_uuid' | 'get_by_name_label' | 'create' | 'destroy';

export interface ClassDecl {
  name: string;
  /** The class-wide implicit messages this class has. */
  generic: Partial<Record<GenericName, GenericDecl>>;
  fields: readonly FieldDecl[];
  /** Messages that are not derived from fields (the custom ones). */
  messages: readonly MessageDecl[];
}
