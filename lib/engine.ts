/**
 * resolve(profile) -> credentials: the cache first, then STS, asking for an MFA code only
 * when no live MFA session can be used. One GetSessionToken with MFA per source keys and
 * device serves every role that uses them; role credentials are re-minted from it silently.
 */
import { Cache, cacheKey, isFresh, type Session } from "./cache.ts";
import { type Config, type Keys, loadConfig, type Plan, plan, type Profile } from "./config.ts";
import { MfaRefused, StshError } from "./errors.ts";
import { CodeSource } from "./mfa.ts";
import {
  assumeRole,
  type CallTarget,
  getSessionToken,
  type Issued,
  sdkCredentials,
} from "./sts.ts";
import { notice } from "./tty.ts";
import { configStamp, refreshMargin } from "./paths.ts";
import { SessionVault, storedKeys } from "./secrets.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
  region: string;
  profile: string;
  arn?: string;
}

export interface ResolveOptions {
  /** The person's environment: config paths, region, endpoint, environment credentials. */
  env?: Record<string, string>;
  tokenCode?: string;
  /** May the terminal be asked for a code? */
  interactive: boolean;
  /** Pass long-term keys through instead of a GetSessionToken session. */
  noSession?: boolean;
  config?: Config;
  now?: () => number;
  log?: (message: string) => void;
}

const CHAIN_CAP = 3600;

class Resolver {
  readonly env: Record<string, string>;
  readonly cache: Cache;
  /** Where MFA sessions' secrets go (a secret store when one is active); opened lazily. */
  readonly vault: SessionVault;
  readonly now: () => number;
  readonly margin: number;
  readonly log: (m: string) => void;
  codes?: CodeSource;
  /** The cache key of the session run() returned last. */
  lastKey?: string;

  constructor(readonly pl: Plan, readonly config: Config, readonly opts: ResolveOptions) {
    this.env = opts.env ?? Deno.env.toObject();
    this.vault = new SessionVault({ env: this.env, interactive: opts.interactive });
    this.cache = new Cache(this.env, this.vault);
    this.now = opts.now ?? Date.now;
    this.margin = refreshMargin(this.env);
    this.log = opts.log ?? (() => {});
  }

  fresh(s: Session): boolean {
    return isFresh(s, this.now(), this.margin);
  }

  target(k: Keys): CallTarget {
    // Only the keys: a cached session's string expiration would confuse the SDK.
    const credentials = {
      accessKeyId: k.accessKeyId,
      secretAccessKey: k.secretAccessKey,
      sessionToken: k.sessionToken,
    };
    return { region: this.pl.region, endpoint: this.pl.endpoint, credentials };
  }

  codeSource(): CodeSource {
    this.codes ??= new CodeSource({
      serial: this.pl.mfaSerial!,
      profile: this.pl.target.name,
      tokenCode: this.opts.tokenCode,
      mfaProcess: this.pl.mfaProcess,
      interactive: this.opts.interactive,
      env: this.env,
    });
    return this.codes;
  }

  /** Run an STS call that carries an MFA code, re-asking a person after a refused code. */
  async withCode(call: (code: string) => Promise<Issued>): Promise<Issued> {
    const src = this.codeSource();
    let reason: string | undefined;
    while (true) {
      const code = await src.next(reason);
      try {
        return await call(code);
      } catch (e) {
        // Only a refused code is worth another try; a wrong device or role is not.
        if (!(e instanceof MfaRefused) || !src.canRetry) throw e;
        reason = e.message;
      } finally {
        await src.guard.remember(this.pl.mfaSerial!, code);
      }
    }
  }

  /** A cached session for `key`, or a new one from `mint`, under the key's lock. */
  async session(
    key: string,
    label: string,
    mint: () => Promise<Session>,
  ): Promise<Session> {
    const quick = await this.cache.read(key);
    if (quick && this.fresh(quick)) {
      this.log(`cache hit: ${label} until ${quick.expiration}`);
      this.lastKey = key;
      return quick;
    }
    const s = await this.cache.withLock(key, async () => {
      const again = await this.cache.read(key);
      if (again && this.fresh(again)) {
        this.log(`cache hit after waiting: ${label}`);
        return again;
      }
      this.log(`minting: ${label}`);
      const s = await mint();
      await this.cache.write(key, s);
      return s;
    }, () => notice(`waiting for MFA in another terminal (${label})…`));
    this.lastKey = key; // after any session minted inside, so the outermost one is last
    return s;
  }

  /**
   * Long-term keys with their secret: from the secret store when they live there. The one
   * place keys come out of a store, reached only when STS must be called with them.
   */
  async longTerm(k: Keys): Promise<Keys> {
    if (!k.keyring) return k;
    this.log(`reading the keys of '${this.pl.base.profile.name}' from ${k.keyring}`);
    return await storedKeys(this.pl.base.profile.name, {
      accessKeyId: k.accessKeyId,
      stored: k.keyring,
    }, { env: this.env, interactive: this.opts.interactive });
  }

  async baseKeys(): Promise<Keys & { expiration?: Date }> {
    const b = this.pl.base;
    if (b.kind === "keys") return await this.longTerm(b.keys);
    if (b.kind === "environment") {
      const id = this.env.AWS_ACCESS_KEY_ID, secret = this.env.AWS_SECRET_ACCESS_KEY;
      if (!id || !secret) {
        throw new StshError(
          `Profile '${b.profile.name}' uses credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set.`,
        );
      }
      return { accessKeyId: id, secretAccessKey: secret, sessionToken: this.env.AWS_SESSION_TOKEN };
    }
    return await sdkCredentials(b.profile.name, b.via, this.config);
  }

  /** GetSessionToken on long-term keys: with MFA when a device is configured. */
  async userSession(keys: Keys): Promise<Session> {
    const serial = this.pl.mfaSerial;
    const duration = this.pl.base.profile.mfaSessionDurationSeconds;
    const key = await cacheKey({
      kind: "session",
      keyId: keys.accessKeyId,
      serial,
      duration,
      endpoint: this.pl.endpoint,
    });
    const what = `GetSessionToken for '${this.pl.base.profile.name}'`;
    return await this.session(key, `MFA session of '${this.pl.base.profile.name}'`, async () => {
      const full = await this.longTerm(keys);
      // Whatever the store must ask (unlock, a passphrase) is asked before the code is spent.
      if (serial) await this.vault.ready();
      const got = serial
        ? await this.withCode((code) =>
          getSessionToken(this.target(full), { durationSeconds: duration, serial, code, what })
        )
        : await getSessionToken(this.target(full), { durationSeconds: duration, what });
      return toSession(
        got,
        serial ? "mfa-session" : "session",
        this.pl.base.profile.name,
        !!serial,
        this.now(),
      );
    });
  }

  async assume(
    role: Profile,
    source: () => Promise<Keys>,
    sourceId: string,
    opts: {
      chained: boolean;
      withCode: boolean;
      note?: string;
      /** A new source when STS refuses the cached one (expired early, or revoked). */
      renewSource?: () => Promise<Keys>;
    },
  ): Promise<Session> {
    let duration = role.durationSeconds;
    if (opts.chained && duration !== undefined && duration > CHAIN_CAP) {
      notice(
        `profile '${role.name}' asks for duration_seconds ${duration}, but AWS caps a role assumed from another session at 1 h; using 3600.`,
      );
      duration = CHAIN_CAP;
    }
    const serial = opts.withCode ? this.pl.mfaSerial : undefined;
    const key = await cacheKey({
      kind: "role",
      source: sourceId,
      role: role.roleArn,
      externalId: role.externalId,
      sessionName: role.roleSessionName,
      duration,
      serial,
      endpoint: this.pl.endpoint,
    });
    const what = `AssumeRole for '${role.name}'`;
    return await this.session(key, `role '${role.name}'`, async () => {
      const p = {
        roleArn: role.roleArn!,
        sessionName: role.roleSessionName ?? `stsh-${Math.floor(this.now() / 1000)}`,
        externalId: role.externalId,
        durationSeconds: duration,
        what,
      };
      const creds = await source();
      if (opts.note) notice(opts.note);
      let got: Issued;
      try {
        got = serial
          ? await this.withCode((code) => assumeRole(this.target(creds), { ...p, serial, code }))
          : await assumeRole(this.target(creds), p);
      } catch (e) {
        const code = e instanceof StshError ? e.stsCode ?? "" : "";
        if (!opts.renewSource || !/^(ExpiredToken|InvalidClientTokenId)$/.test(code)) throw e;
        notice("STS refused the cached MFA session (expired or revoked); starting a new one.");
        got = await assumeRole(this.target(await opts.renewSource()), p);
      }
      return toSession(got, "role", role.name, false, this.now());
    });
  }

  async run(): Promise<Credentials> {
    const { pl } = this;
    const done = (k: Keys & { expiration?: Date | string; arn?: string }): Credentials => ({
      accessKeyId: k.accessKeyId,
      secretAccessKey: k.secretAccessKey,
      sessionToken: k.sessionToken,
      expiration: k.expiration ? new Date(k.expiration) : undefined,
      region: pl.region,
      profile: pl.target.name,
      arn: k.arn,
    });
    const b = pl.base;
    const longTerm = b.kind === "keys" && !b.keys.sessionToken;
    if (pl.roles.length === 0) {
      if (!longTerm || this.opts.noSession) return done(await this.baseKeys());
      // The key id names the session: its secret is fetched only if one must be made.
      return done(await this.userSession(b.keys));
    }
    // Source credentials are fetched only when a role really has to be assumed, so a cache
    // hit never runs an SDK provider (SSO, credential_process) or loads the SDK at all.
    let source: () => Promise<Keys> = () => this.baseKeys();
    let sourceId = b.kind === "keys"
      ? `keys:${b.keys.accessKeyId}`
      : b.kind === "environment"
      ? `env:${this.env.AWS_ACCESS_KEY_ID ?? ""}`
      : `sdk:${b.profile.name}:${b.via}`;
    let last: Session | undefined;
    for (const [i, role] of pl.roles.entries()) {
      let chained = i > 0 || !longTerm;
      let withCode = false;
      let note: string | undefined;
      let renewSource: (() => Promise<Keys>) | undefined;
      if (i === 0 && pl.mfaSerial) {
        const direct = !longTerm ||
          (pl.roles.length === 1 && (role.durationSeconds ?? 3600) > CHAIN_CAP);
        if (direct) {
          withCode = true;
          if (longTerm) {
            note =
              `profile '${role.name}' asks for ${role.durationSeconds} s; AWS caps roles assumed from an MFA session at 1 h, so it is assumed directly with an MFA code (one code per ${role.durationSeconds} s role session).`;
          }
        } else {
          // The MFA session is needed only to mint the role: a role session still fresh is
          // used even when the MFA session behind it has ended.
          const keys = b.keys;
          let sessionKey: string | undefined;
          const fromSession = async () => {
            const session = await this.userSession(keys);
            sessionKey = this.lastKey;
            return session;
          };
          source = fromSession;
          renewSource = async () => {
            if (sessionKey) await this.cache.remove(sessionKey);
            return await fromSession();
          };
          sourceId = `mfa:${sourceId}:${pl.mfaSerial}`;
          chained = true;
        }
      }
      last = await this.assume(role, source, sourceId, { chained, withCode, note, renewSource });
      const s = last;
      source = () => Promise.resolve(s);
      sourceId = `${sourceId}>${role.roleArn}`;
    }
    return done(last!);
  }
}

function toSession(
  got: Issued,
  kind: Session["kind"],
  profile: string,
  mfa: boolean,
  nowMs: number,
): Session {
  return {
    issued: new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
    accessKeyId: got.accessKeyId,
    secretAccessKey: got.secretAccessKey,
    sessionToken: got.sessionToken,
    expiration: got.expiration.toISOString().replace(/\.\d{3}Z$/, "Z"),
    kind,
    profile,
    arn: got.arn,
    mfa,
  };
}

/** Credentials for `profile`, with as few MFA prompts as AWS allows. */
export async function resolve(profile: string, opts: ResolveOptions): Promise<Credentials> {
  const env = opts.env ?? Deno.env.toObject();
  const config = opts.config ?? await loadConfig(env);
  const pl = plan(config, profile, env);
  const r = new Resolver(pl, config, { ...opts, env });
  try {
    const creds = await r.run();
    // Keys-based chains depend only on the files and env in the stamp: remember the result.
    if (pl.base.kind === "keys" && r.lastKey && !opts.noSession && !pl.base.keys.sessionToken) {
      await r.cache.rememberTarget(profile, {
        stamp: await configStamp(env),
        key: r.lastKey,
        region: pl.region,
      });
    }
    return creds;
  } finally {
    r.codes?.close();
    for (const w of r.cache.warnings) notice(w);
  }
}
