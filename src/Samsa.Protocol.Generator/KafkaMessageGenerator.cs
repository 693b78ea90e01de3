using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using Samsa.Protocol.Generator.Kafka;

namespace Samsa.Protocol.Generator;

/// <summary>
/// Turns Kafka's message schemas (AdditionalFiles ending in <c>.json</c>, in Kafka's own
/// schema language) into C# codecs in namespace Samsa.Kafka.Protocol.Messages, plus the
/// <c>ApiKey</c> enum and the <c>ApiMessages</c> lookup class. Other file kinds are left to
/// other generators in this assembly.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class KafkaMessageGenerator : IIncrementalGenerator
{
    private static readonly DiagnosticDescriptor MalformedSpec = new(
        "SAMSA001", "Malformed Kafka message schema", "{0}: {1}", "Samsa.Protocol", DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static readonly DiagnosticDescriptor DuplicateSpec = new(
        "SAMSA002", "Duplicate Kafka message", "{0}: message {1} is also defined in {2}", "Samsa.Protocol", DiagnosticSeverity.Error, isEnabledByDefault: true);

    private static readonly DiagnosticDescriptor InternalError = new(
        "SAMSA003", "Kafka message generator failed", "{0}: generator error {1}", "Samsa.Protocol", DiagnosticSeverity.Error, isEnabledByDefault: true);

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var files = context.AdditionalTextsProvider
            .Where(static t => t.Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            .Select(static (t, ct) => (Path: t.Path, Text: t.GetText(ct)?.ToString() ?? ""));

        context.RegisterSourceOutput(files, static (spc, file) => EmitMessage(spc, file.Path, file.Text));

        var all = files.Collect();
        context.RegisterSourceOutput(all, static (spc, list) => EmitApiMessages(spc, list));
    }

    private static MessageSpec? TryParse(string path, string text, Action<Diagnostic>? report)
    {
        try
        {
            return SpecParser.Parse(text, path);
        }
        catch (SpecException e)
        {
            report?.Invoke(Diagnostic.Create(MalformedSpec, LocationOf(path, text, e.Line), System.IO.Path.GetFileName(path), e.Message));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            report?.Invoke(Diagnostic.Create(InternalError, Location.None, System.IO.Path.GetFileName(path), e.ToString()));
        }
        return null;
    }

    private static Location LocationOf(string path, string text, int line)
    {
        if (line <= 0) return Location.Create(path, default, default);
        var position = new LinePosition(line - 1, 0);
        return Location.Create(path, default, new LinePositionSpan(position, position));
    }

    private static void EmitMessage(SourceProductionContext spc, string path, string text)
    {
        var msg = TryParse(path, text, spc.ReportDiagnostic);
        if (msg is null) return;
        string source;
        try
        {
            source = KafkaCodeEmitter.Emit(msg);
        }
        catch (SpecException e)
        {
            spc.ReportDiagnostic(Diagnostic.Create(MalformedSpec, LocationOf(path, text, e.Line), System.IO.Path.GetFileName(path), e.Message));
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            spc.ReportDiagnostic(Diagnostic.Create(InternalError, Location.None, System.IO.Path.GetFileName(path), e.ToString()));
            return;
        }
        // The path hash keeps hint names unique when two files declare the same message
        // (reported as SAMSA002); AddSource would otherwise throw.
        spc.AddSource($"Kafka.{msg.Name}.{StableHash(path):x8}.g.cs", SourceText.From(source, Encoding.UTF8));
    }

    private static uint StableHash(string text)
    {
        // FNV-1a: string.GetHashCode is randomized per process.
        uint hash = 2166136261;
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }

    private static void EmitApiMessages(SourceProductionContext spc, ImmutableArray<(string Path, string Text)> files)
    {
        // A project without Kafka schemas (the Keeper's) gets no Kafka lookup tables.
        if (files.IsDefaultOrEmpty) return;
        var messages = new List<MessageSpec>();
        var byName = new Dictionary<string, MessageSpec>(StringComparer.Ordinal);
        foreach (var (path, text) in files.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            spc.CancellationToken.ThrowIfCancellationRequested();
            var msg = TryParse(path, text, null); // per-file diagnostics are reported by EmitMessage
            if (msg is null) continue;
            if (byName.TryGetValue(msg.Name, out var other))
            {
                spc.ReportDiagnostic(Diagnostic.Create(DuplicateSpec, Location.Create(path, default, default),
                    System.IO.Path.GetFileName(path), msg.Name, System.IO.Path.GetFileName(other.Path)));
                continue;
            }
            byName[msg.Name] = msg;
            messages.Add(msg);
        }
        // A project with no Kafka schemas (e.g. Samsa.Keeper.Protocol, which shares this generator
        // assembly for its .jute files) gets no Kafka lookups: they would reference types it lacks.
        if (messages.Count == 0) return;
        spc.AddSource("Kafka.ApiMessages.g.cs", SourceText.From(ApiMessagesEmitter.Emit(messages, spc.ReportDiagnostic), Encoding.UTF8));
    }
}

/// <summary>Emits the ApiKey enum and the ApiMessages lookups from all request/response schemas.</summary>
internal static class ApiMessagesEmitter
{
    private const string Prim = "global::Samsa.Kafka.Protocol.Primitives";
    private const string Ns = KafkaCodeEmitter.Namespace;

    private sealed class Api
    {
        public short Key;
        public string Name = "";
        public MessageSpec? Request;
        public MessageSpec? Response;
    }

    public static string Emit(List<MessageSpec> messages, Action<Diagnostic> report)
    {
        var apis = new SortedDictionary<short, Api>();
        foreach (var m in messages.Where(m => m.Type == "request"))
        {
            if (apis.ContainsKey(m.ApiKey)) continue; // duplicate keys would be a spec mistake; first wins
            var name = m.Name.EndsWith("Request", StringComparison.Ordinal) ? m.Name.Substring(0, m.Name.Length - "Request".Length) : m.Name;
            apis[m.ApiKey] = new Api { Key = m.ApiKey, Name = name, Request = m };
        }
        foreach (var m in messages.Where(m => m.Type == "response"))
            if (apis.TryGetValue(m.ApiKey, out var api) && api.Response is null) api.Response = m;

        var sb = new StringBuilder();
        void L(string s = "") => sb.Append(s).Append('\n');
        L("// <auto-generated/>");
        L("#nullable enable");
        L("#pragma warning disable CS1591");
        L();
        L($"namespace {Ns};");
        L();
        L("/// <summary>Kafka API keys, one per request schema.</summary>");
        L("public enum ApiKey : short");
        L("{");
        foreach (var a in apis.Values) L($"    {a.Name} = {a.Key},");
        L("}");
        L();
        L("/// <summary>Per-API facts derived from the schemas: version ranges, header versions, decoders and factories.</summary>");
        L("public static class ApiMessages");
        L("{");
        L($"    private static readonly global::Samsa.Kafka.Protocol.Messages.ApiKey[] s_all = new global::Samsa.Kafka.Protocol.Messages.ApiKey[] {{ {string.Join(", ", apis.Values.Select(a => "global::Samsa.Kafka.Protocol.Messages.ApiKey." + a.Name))} }};");
        L();
        L("    /// <summary>Every API key that has a request schema, in key order.</summary>");
        L("    public static global::System.Collections.Generic.IReadOnlyList<global::Samsa.Kafka.Protocol.Messages.ApiKey> All => s_all;");
        L();
        L("    public static bool IsKnown(short apiKey) => apiKey switch");
        L("    {");
        foreach (var a in apis.Values) L($"        {a.Key} => true,");
        L("        _ => false,");
        L("    };");
        L();
        L("    /// <summary>The version range of the request schema (what the protocol defines, not what the broker serves).</summary>");
        L("    public static bool TryGetVersionRange(short apiKey, out short lowest, out short highest)");
        L("    {");
        L("        switch (apiKey)");
        L("        {");
        foreach (var a in apis.Values)
            L($"            case {a.Key}: lowest = {a.Request!.ValidVersions.Lowest}; highest = {a.Request.ValidVersions.Highest}; return true;");
        L("            default: lowest = -1; highest = -1; return false;");
        L("        }");
        L("    }");
        L();
        L("    public static short LowestSupportedVersion(global::Samsa.Kafka.Protocol.Messages.ApiKey apiKey) =>");
        L("        TryGetVersionRange((short)apiKey, out var lowest, out _) ? lowest : throw Unknown((short)apiKey);");
        L();
        L("    public static short HighestSupportedVersion(global::Samsa.Kafka.Protocol.Messages.ApiKey apiKey) =>");
        L("        TryGetVersionRange((short)apiKey, out _, out var highest) ? highest : throw Unknown((short)apiKey);");
        L();
        L("    /// <summary>Lowest flexible (KIP-482) version of the request, or -1 when never flexible.</summary>");
        L("    public static short LowestFlexibleVersion(short apiKey) => apiKey switch");
        L("    {");
        foreach (var a in apis.Values) L($"        {a.Key} => {Flex(a.Request!)},");
        L("        _ => throw Unknown(apiKey),");
        L("    };");
        L();
        L("    /// <summary>");
        L("    /// Request header version for a request: v2 (flexible) from the API's first flexible version,");
        L("    /// else v1; ControlledShutdown v0 alone uses header v0 (no client id), as upstream.");
        L("    /// Versions above the schema's range follow the open-ended flexible range.");
        L("    /// </summary>");
        L("    public static short RequestHeaderVersion(short apiKey, short apiVersion)");
        L("    {");
        if (apis.TryGetValue(7, out var cs) && cs.Name == "ControlledShutdown")
            L("        if (apiKey == 7 && apiVersion == 0) return 0;");
        L("        short flexible = LowestFlexibleVersion(apiKey);");
        L("        return flexible >= 0 && apiVersion >= flexible ? (short)2 : (short)1;");
        L("    }");
        L();
        L("    /// <summary>");
        L("    /// Response header version: v1 (flexible) from the API's first flexible version, else v0.");
        L("    /// ApiVersions responses always use v0 so that a client can parse the answer whatever");
        L("    /// version it asked for (KIP-511).");
        L("    /// </summary>");
        L("    public static short ResponseHeaderVersion(short apiKey, short apiVersion)");
        L("    {");
        L("        if (apiKey == 18) return 0;");
        L("        short flexible = apiKey switch");
        L("        {");
        foreach (var a in apis.Values) L($"            {a.Key} => {Flex(a.Response ?? a.Request!)},");
        L("            _ => throw Unknown(apiKey),");
        L("        };");
        L("        return flexible >= 0 && apiVersion >= flexible ? (short)1 : (short)0;");
        L("    }");
        L();
        EmitDispatch(L, apis, "Request", a => a.Request);
        EmitDispatch(L, apis, "Response", a => a.Response);
        L($"    private static {Prim}.KafkaProtocolException Unknown(short apiKey) =>");
        L($"        new({Prim}.ProtocolErrorKind.UnsupportedVersion, $\"unknown API key {{apiKey}}\");");
        L();
        L($"    private static {Prim}.KafkaProtocolException BadVersion(global::Samsa.Kafka.Protocol.Messages.ApiKey apiKey, short version) =>");
        L($"        new({Prim}.ProtocolErrorKind.UnsupportedVersion, $\"{{apiKey}} version {{version}} is not supported\");");
        L("}");
        return sb.ToString();
    }

    private static string Flex(MessageSpec m) => m.FlexibleVersions.IsEmpty ? "-1" : m.FlexibleVersions.Lowest.ToString();

    private static void EmitDispatch(Action<string> L, SortedDictionary<short, Api> apis, string kind, Func<Api, MessageSpec?> pick)
    {
        const string key = "global::Samsa.Kafka.Protocol.Messages.ApiKey";
        L($"    /// <summary>Decodes a {kind.ToLowerInvariant()} body; throws UnsupportedVersion for an unknown key or a version outside the schema.</summary>");
        L($"    public static global::Samsa.Kafka.Protocol.IKafkaMessage Read{kind}({key} apiKey, ref {Prim}.KafkaReader reader, short version)");
        L("    {");
        L("        switch (apiKey)");
        L("        {");
        foreach (var a in apis.Values)
        {
            var m = pick(a);
            if (m is null) continue;
            var t = $"global::{Ns}.{m.Name}";
            L($"            case {key}.{a.Name}:");
            L($"                if (version < {t}.LowestSupportedVersion || version > {t}.HighestSupportedVersion) throw BadVersion(apiKey, version);");
            L($"                return {t}.Read(ref reader, version);");
        }
        L("            default: throw Unknown((short)apiKey);");
        L("        }");
        L("    }");
        L("");
        L($"    /// <summary>A new {kind.ToLowerInvariant()} with schema defaults.</summary>");
        L($"    public static global::Samsa.Kafka.Protocol.IKafkaMessage Create{kind}({key} apiKey) => apiKey switch");
        L("    {");
        foreach (var a in apis.Values)
        {
            var m = pick(a);
            if (m is null) continue;
            L($"        {key}.{a.Name} => new global::{Ns}.{m.Name}(),");
        }
        L("        _ => throw Unknown((short)apiKey),");
        L("    };");
        L("");
    }
}
