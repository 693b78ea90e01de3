using System;
using System.Collections.Immutable;
using System.Linq;
using System.IO;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Samsa.Protocol.Generator.Jute;

/// <summary>Turns protocol-specs/zookeeper/*.jute (AdditionalFiles) into jute record classes
/// in Samsa.Keeper.Protocol.Records. Only files ending in ".jute" are read.</summary>
[Generator(LanguageNames.CSharp)]
public sealed class JuteGenerator : IIncrementalGenerator
{
    // Release tracking (RS2008) is for shipped analyzers; these ids only report broken spec files in this repo.
#pragma warning disable RS2008
    private static readonly DiagnosticDescriptor ParseError = new(
        "SAMSAJUTE001", "Invalid jute file", "{0}: {1}", "Samsa.Jute", DiagnosticSeverity.Error, true);

    private static readonly DiagnosticDescriptor UnsupportedType = new(
        "SAMSAJUTE002", "Unsupported jute type", "{0}: class {1} uses byte/float/double, which the Keeper's primitives do not implement", "Samsa.Jute", DiagnosticSeverity.Error, true);
#pragma warning restore RS2008

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var files = context.AdditionalTextsProvider
            .Where(static f => f.Path.EndsWith(".jute", StringComparison.OrdinalIgnoreCase))
            .Select(static (f, ct) => (Path: f.Path, Text: f.GetText(ct)?.ToString() ?? ""));

        context.RegisterSourceOutput(files, static (spc, file) =>
        {
            string stem = Path.GetFileNameWithoutExtension(file.Path);
            ImmutableArray<JuteClass> classes;
            try
            {
                classes = JuteParser.Parse(file.Text).ToImmutableArray();
            }
            catch (FormatException e)
            {
                spc.ReportDiagnostic(Diagnostic.Create(ParseError, Location.None, file.Path, e.Message));
                return;
            }
            foreach (var bad in JuteEmitter.Unsupported(classes.ToList()))
                spc.ReportDiagnostic(Diagnostic.Create(UnsupportedType, Location.None, file.Path, bad.Name));
            foreach (var c in classes)
                spc.AddSource("Jute." + stem + "." + c.Name + ".g.cs", SourceText.From(JuteEmitter.Emit(c), Encoding.UTF8));
        });
    }
}
