/**
 * The Windows Credential Manager (generic credentials named `stsh:ITEM`) through
 * CredReadW / CredWriteW / CredDeleteW / CredEnumerateW, called from Windows PowerShell
 * with Add-Type. Everything — the script, the item, the secret — goes on stdin; the argv
 * holds only a fixed bootstrap that reads it. Costs about a second per call (PowerShell
 * start and the C# compile), which only the slow path pays. No --allow-ffi needed.
 * UNTESTED HERE (the project's machines are Linux): written from the Win32 documentation.
 */
import { HelperFailed, runHelper } from "../proc.ts";
import { keyringTimeoutMs, type SecretStore, StoreError, type StoreOptions } from "../secrets.ts";
import { oneLine } from "../text.ts";

const WHERE = "the Windows Credential Manager";

const CSHARP = `
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;
public static class StshCred {
  [StructLayout(LayoutKind.Sequential)]
  struct CREDENTIAL {
    public uint Flags; public uint Type; public IntPtr TargetName; public IntPtr Comment;
    public System.Runtime.InteropServices.ComTypes.FILETIME LastWritten;
    public uint CredentialBlobSize; public IntPtr CredentialBlob; public uint Persist;
    public uint AttributeCount; public IntPtr Attributes; public IntPtr TargetAlias;
    public IntPtr UserName;
  }
  [DllImport("advapi32.dll", EntryPoint = "CredReadW", CharSet = CharSet.Unicode, SetLastError = true)]
  static extern bool CredRead(string target, uint type, uint flags, out IntPtr cred);
  [DllImport("advapi32.dll", EntryPoint = "CredWriteW", CharSet = CharSet.Unicode, SetLastError = true)]
  static extern bool CredWrite(ref CREDENTIAL cred, uint flags);
  [DllImport("advapi32.dll", EntryPoint = "CredDeleteW", CharSet = CharSet.Unicode, SetLastError = true)]
  static extern bool CredDelete(string target, uint type, uint flags);
  [DllImport("advapi32.dll", EntryPoint = "CredEnumerateW", CharSet = CharSet.Unicode, SetLastError = true)]
  static extern bool CredEnumerate(string filter, uint flags, out uint count, out IntPtr creds);
  [DllImport("advapi32.dll")] static extern void CredFree(IntPtr buffer);
  const uint GENERIC = 1;
  const int NOT_FOUND = 1168;

  public static string Read(string target) {
    IntPtr p;
    if (!CredRead(target, GENERIC, 0, out p)) {
      int err = Marshal.GetLastWin32Error();
      if (err == NOT_FOUND) return null;
      throw new Win32Exception(err);
    }
    try {
      CREDENTIAL c = (CREDENTIAL)Marshal.PtrToStructure(p, typeof(CREDENTIAL));
      byte[] b = new byte[c.CredentialBlobSize];
      if (b.Length > 0) Marshal.Copy(c.CredentialBlob, b, 0, b.Length);
      return Encoding.UTF8.GetString(b);
    } finally { CredFree(p); }
  }

  public static void Write(string target, string secret, string label) {
    byte[] b = Encoding.UTF8.GetBytes(secret);
    if (b.Length > 2560) throw new ArgumentException("the secret is larger than the 2560 bytes the Credential Manager keeps");
    CREDENTIAL c = new CREDENTIAL();
    c.Type = GENERIC;
    c.Persist = 2;
    c.TargetName = Marshal.StringToCoTaskMemUni(target);
    c.Comment = Marshal.StringToCoTaskMemUni(label);
    c.UserName = Marshal.StringToCoTaskMemUni("stsh");
    c.CredentialBlobSize = (uint)b.Length;
    c.CredentialBlob = Marshal.AllocCoTaskMem(Math.Max(b.Length, 1));
    Marshal.Copy(b, 0, c.CredentialBlob, b.Length);
    try {
      if (!CredWrite(ref c, 0)) throw new Win32Exception(Marshal.GetLastWin32Error());
    } finally {
      Marshal.Copy(new byte[b.Length], 0, c.CredentialBlob, b.Length);
      Marshal.FreeCoTaskMem(c.CredentialBlob);
      Marshal.FreeCoTaskMem(c.TargetName);
      Marshal.FreeCoTaskMem(c.Comment);
      Marshal.FreeCoTaskMem(c.UserName);
    }
  }

  public static bool Delete(string target) {
    if (CredDelete(target, GENERIC, 0)) return true;
    int err = Marshal.GetLastWin32Error();
    if (err == NOT_FOUND) return false;
    throw new Win32Exception(err);
  }

  public static string[] List(string filter) {
    uint n; IntPtr arr;
    List<string> names = new List<string>();
    if (!CredEnumerate(filter, 0, out n, out arr)) {
      int err = Marshal.GetLastWin32Error();
      if (err == NOT_FOUND) return names.ToArray();
      throw new Win32Exception(err);
    }
    try {
      for (int i = 0; i < n; i++) {
        IntPtr cp = Marshal.ReadIntPtr(arr, i * IntPtr.Size);
        CREDENTIAL c = (CREDENTIAL)Marshal.PtrToStructure(cp, typeof(CREDENTIAL));
        names.Add(Marshal.PtrToStringUni(c.TargetName));
      }
    } finally { CredFree(arr); }
    return names.ToArray();
  }
}
`;

const SCRIPT = `
Add-Type -TypeDefinition $req.csharp
$out = switch ($req.op) {
  'get' { $s = [StshCred]::Read($req.target); @{ found = ($null -ne $s); secret = $s } }
  'set' { [StshCred]::Write($req.target, $req.secret, $req.label); @{ ok = $true } }
  'delete' { @{ deleted = [StshCred]::Delete($req.target) } }
  'list' { @{ names = @([StshCred]::List('stsh:*')) } }
}
[Console]::Out.Write((ConvertTo-Json -Compress -InputObject $out))
`;

/** The only thing in argv: read a JSON request on stdin and run the script it carries. */
const BOOTSTRAP = "$ErrorActionPreference = 'Stop'; " +
  "$req = [Console]::In.ReadToEnd() | ConvertFrom-Json; Invoke-Expression $req.script";

function encoded(script: string): string {
  const bytes = new Uint8Array(script.length * 2);
  for (let i = 0; i < script.length; i++) {
    const c = script.charCodeAt(i);
    bytes[2 * i] = c & 0xff;
    bytes[2 * i + 1] = c >> 8;
  }
  return btoa(String.fromCharCode(...bytes));
}

export class WinCred implements SecretStore {
  readonly name = "wincred" as const;
  readonly where = WHERE;

  constructor(private readonly opts: StoreOptions) {}

  private async call(req: Record<string, string>): Promise<Record<string, unknown>> {
    const ms = keyringTimeoutMs(this.opts.env);
    const input = JSON.stringify({ ...req, script: SCRIPT, csharp: CSHARP });
    let out: string;
    try {
      out = await runHelper(
        `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${
          encoded(BOOTSTRAP)
        }`,
        {
          what: "PowerShell",
          timeoutMs: ms,
          maxOutputBytes: 1 << 20,
          childEnv: this.opts.env,
          input,
          captureStderr: true,
        },
      );
    } catch (e) {
      if (!(e instanceof HelperFailed)) throw e;
      const said = oneLine(e.stderr.trim()).slice(0, 300);
      if (e.reason === "timeout") {
        throw new StoreError("timeout", `${WHERE} did not answer within ${ms / 1000} s.`);
      }
      if (e.reason === "start" || /not recognized/.test(said)) {
        throw new StoreError("unavailable", "powershell.exe could not be started.");
      }
      if (/logon session/i.test(said)) {
        throw new StoreError(
          "unavailable",
          `${WHERE} is not available in this logon session (${said}).`,
          "Set STSH_KEYRING=file.",
        );
      }
      throw new StoreError("failed", `${WHERE} refused: ${said || `exit code ${e.code}`}`);
    }
    try {
      return JSON.parse(out);
    } catch {
      throw new StoreError("failed", `${WHERE}: PowerShell printed something unexpected.`);
    }
  }

  async get(item: string): Promise<string | null> {
    const r = await this.call({ op: "get", target: `stsh:${item}` });
    return r.found && typeof r.secret === "string" ? r.secret : null;
  }

  async set(item: string, secret: string, label: string): Promise<void> {
    await this.call({ op: "set", target: `stsh:${item}`, secret, label });
  }

  async delete(item: string): Promise<boolean> {
    return (await this.call({ op: "delete", target: `stsh:${item}` })).deleted === true;
  }

  async list(): Promise<string[]> {
    const names = (await this.call({ op: "list" })).names;
    return Array.isArray(names)
      ? names.filter((n): n is string => typeof n === "string" && n.startsWith("stsh:"))
        .map((n) => n.slice(5))
      : [];
  }
}
