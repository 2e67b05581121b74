// Some fields hold a whole record as text in the wire format (VM.last_booted_record, as
// xapi keeps it: an XML-RPC struct). Services that write or read such fields get a codec
// from daemon.ts, so that the wire formats stay in rpc/.

export interface RecordCodec {
  /** The record as the field's text. */
  encode(cls: string, rec: Record<string, unknown>): string;
  /** The fields that the text holds and that decode as the class's types; the rest are left out.
   * Undefined if the text is not a record at all. */
  decode(cls: string, text: string): Promise<Record<string, unknown> | undefined>;
}
