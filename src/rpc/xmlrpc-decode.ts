// Decoding of incoming XML-RPC method calls. The usual call — a method name and string
// parameters — is matched by two regular expressions; anything else is read by saxes, a
// strict XML parser, and turned into values by the small machine below. That machine
// keeps the rules of the `xmlrpc` package's deserializer, which decoded calls before it
// (the tests hold it to that package as an oracle): a client gets the same method and
// params, and its mistakes are refused as before. What saxes adds is XML's own rules: a
// document that is not well-formed is refused rather than guessed at, line ends are
// normalized to \n as XML requires, and no entity but XML's five and character
// references is ever expanded (a DOCTYPE is read past, its declarations unused).
import { SaxesParser } from 'saxes';

export class MalformedRequest extends Error {}

export interface MethodCall { method: string; params: unknown[] }

// ---- the fast path ------------------------------------------------------------------------

// For what the pattern accepts, it gives what the full decoder gives: such text holds no
// markup, entity or carriage return to be interpreted, and whitespace between these tags
// is ignored by both. (One exception: a "]]>" in text, which XML forbids, passes here and
// is refused there; the package took it too.)
const WS = '[ \\t\\n]*';
const TEXT = '[^<&\\r]*';
const SIMPLE_CALL = new RegExp(
  `^${WS}(?:<\\?xml[^<>?]*\\?>${WS})?<methodCall>${WS}<methodName>([^<&\\r]+)</methodName>${WS}` +
  `<params>${WS}((?:<param>${WS}<value>(?:<string>${TEXT}</string>|${TEXT})</value>${WS}</param>${WS})*)</params>${WS}</methodCall>${WS}$`,
);
const SIMPLE_PARAM = new RegExp(`<value>(?:<string>(${TEXT})</string>|(${TEXT}))</value>`, 'g');

export function parseSimpleCall(body: string): MethodCall | undefined {
  const m = SIMPLE_CALL.exec(body);
  if (!m) return undefined;
  const params: string[] = [];
  for (const p of m[2]!.matchAll(SIMPLE_PARAM)) params.push(p[1] ?? p[2]!);
  return { method: m[1]!, params };
}

// ---- elements -----------------------------------------------------------------------------

const enum Kind {
  MethodCall, MethodResponse, MethodName, Params, Fault, Value,
  String, Name, Int, I8, Boolean, Double, DateTime, Base64, Nil, Array, Struct,
  /** Elements that only group others: param, data, member. */
  Grouping,
}

const KINDS = new Map<string, Kind>([
  ['methodCall', Kind.MethodCall], ['methodResponse', Kind.MethodResponse], ['methodName', Kind.MethodName],
  ['params', Kind.Params], ['fault', Kind.Fault], ['param', Kind.Grouping], ['value', Kind.Value],
  ['string', Kind.String], ['name', Kind.Name], ['int', Kind.Int], ['i4', Kind.Int], ['i8', Kind.I8],
  ['boolean', Kind.Boolean], ['double', Kind.Double], ['dateTime.iso8601', Kind.DateTime], ['base64', Kind.Base64],
  ['nil', Kind.Nil], ['array', Kind.Array], ['data', Kind.Grouping], ['struct', Kind.Struct], ['member', Kind.Grouping],
]);
// The package's parser upper-cased every name, so any spelling of a name was taken; the
// canonical one is looked up first, and others only when that misses.
const KINDS_ANY_CASE = new Map([...KINDS].map(([name, kind]) => [name.toUpperCase(), kind]));

function kindOf(name: string): Kind {
  const k = KINDS.get(name) ?? KINDS_ANY_CASE.get(name.toUpperCase());
  if (k === undefined) throw new MalformedRequest(`unknown XML-RPC element <${name}>`);
  return k;
}

// ---- values -------------------------------------------------------------------------------

const INTEGER = /^-?\d+$/;
// The package's pattern, but whole: any leading or trailing text other than whitespace
// is refused, and a fraction needs its dot (the package took any character there, and
// so read a "+02" offset as 20 ms).
const ISO8601 = /^[ \t\n]*(\d{4})-?(\d{2})-?(\d{2})(?:T(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?)?[ \t\n]*$/;

/** A dateTime.iso8601 as a Date, as the package gave it: a time without an offset is
 * local time, and out-of-range fields make an invalid Date rather than an error (the
 * API's type check refuses it later). The fields reach Date as an ISO string, as they
 * did there, so the engine's range rules (30 February rolls over, month 13 is invalid)
 * apply alike. */
function decodeDateTime(text: string): Date {
  const m = ISO8601.exec(text);
  if (!m) throw new MalformedRequest(`not an ISO 8601 dateTime: '${text}'`);
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '000', zone = ''] = m;
  let offset = zone;
  if (zone.length > 1) {
    const digits = zone.slice(1).replace(':', '');
    offset = `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2) || '00'}`;
  }
  return new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${frac}${offset}`);
}

/** A struct from its members' names and values, laid flat. Names are defined, not
 * assigned, so that a member called `__proto__` stays a plain key. */
function makeStruct(items: unknown[]): Record<string, unknown> {
  const struct: Record<string, unknown> = {};
  for (let i = 0; i < items.length; i += 2) {
    Object.defineProperty(struct, String(items[i]), { value: items[i + 1], enumerable: true, writable: true, configurable: true });
  }
  return struct;
}

// ---- the machine --------------------------------------------------------------------------

/**
 * Builds one call from its elements, without recursion, so that nesting costs heap and
 * not stack. Finished values go on one stack; an array or struct, when it closes, takes
 * the values pushed since it opened (a struct's member names are among them, as strings).
 * Text is gathered from the last element opened, so whitespace around a typed value is
 * ignored, and a <value> with no type inside is a string, its text as it stands.
 */
class CallBuilder {
  private readonly stack: unknown[] = [];
  /** Where each open array or struct begins on the stack. */
  private readonly marks: number[] = [];
  /** The kinds of the open elements, innermost last. */
  private readonly open: Kind[] = [];
  private text = '';
  /** A <value> is open and nothing typed has ended inside it. */
  private bareValue = false;
  private method = '';
  /** Whether the last of methodCall/methodResponse to end was a methodCall. */
  private isCall = false;
  private ended = false;
  /** Whether the last of params/fault to end was params. */
  private hasParams = false;

  onOpen(name: string): void {
    const k = kindOf(name);
    this.open.push(k);
    if (k === Kind.Array || k === Kind.Struct) this.marks.push(this.stack.length);
    this.text = '';
    this.bareValue = k === Kind.Value;
  }

  onText(t: string): void {
    this.text += t;
  }

  onClose(): void {
    const k = this.open.pop()!;
    const text = this.text;
    switch (k) {
      case Kind.Value:
        if (!this.bareValue) return;
        this.stack.push(text);
        break;
      case Kind.String: case Kind.Name: this.stack.push(text); break;
      case Kind.Int: {
        const n = parseInt(text, 10);
        if (Number.isNaN(n)) throw new MalformedRequest(`not an integer: '${text}'`);
        this.stack.push(n);
        break;
      }
      // an i8 stays a string (a double could not hold it); the API's type check reads it
      case Kind.I8:
        if (!INTEGER.test(text)) throw new MalformedRequest(`not an i8 integer: '${text}'`);
        this.stack.push(text);
        break;
      case Kind.Boolean:
        if (text !== '1' && text !== '0') throw new MalformedRequest(`not a boolean: '${text}'`);
        this.stack.push(text === '1');
        break;
      case Kind.Double: {
        const n = parseFloat(text);
        if (Number.isNaN(n)) throw new MalformedRequest(`not a double: '${text}'`);
        this.stack.push(n);
        break;
      }
      case Kind.DateTime: this.stack.push(decodeDateTime(text)); break;
      case Kind.Base64: this.stack.push(Buffer.from(text, 'base64')); break;
      case Kind.Nil: this.stack.push(null); break;
      case Kind.Array: case Kind.Struct: {
        const mark = this.marks.pop()!;
        const items = this.stack.splice(mark);
        this.stack.push(k === Kind.Array ? items : makeStruct(items));
        break;
      }
      case Kind.MethodName: this.method = text; return;
      case Kind.MethodCall: case Kind.MethodResponse: this.isCall = k === Kind.MethodCall; this.ended = true; return;
      case Kind.Params: case Kind.Fault: this.hasParams = k === Kind.Params; return;
      case Kind.Grouping: return;
    }
    this.bareValue = false;
  }

  /** The call, once the document has ended. */
  finish(): MethodCall {
    if (!this.ended) throw new MalformedRequest('not an XML-RPC message');
    if (!this.isCall) throw new MalformedRequest('not an XML-RPC methodCall');
    if (this.method === '') throw new MalformedRequest('the methodCall has no method name');
    // xapi refuses a methodCall without <params> as unparseable (HTTP 500)
    if (!this.hasParams) throw new MalformedRequest('the methodCall has no <params>');
    return { method: this.method, params: this.stack };
  }
}

// ---- the XML parser -----------------------------------------------------------------------

/** The call in body, by the full decoder; throws MalformedRequest if it is not one. */
export function decodeMethodCallXml(body: string): MethodCall {
  const b = new CallBuilder();
  const p = new SaxesParser();
  p.on('opentag', (tag) => b.onOpen(tag.name));
  p.on('closetag', () => b.onClose());
  p.on('text', (t) => b.onText(t));
  p.on('cdata', (t) => b.onText(t));
  // stop at the first error: the body is refused whatever follows
  p.on('error', (e) => { throw new MalformedRequest(e.message); });
  try {
    p.write(body).close();
  } catch (e) {
    throw e instanceof MalformedRequest ? e : new MalformedRequest((e as Error).message);
  }
  return b.finish();
}

/** The call in body, by the fast path when it applies. */
export function decodeMethodCall(body: string): MethodCall {
  return parseSimpleCall(body) ?? decodeMethodCallXml(body);
}
