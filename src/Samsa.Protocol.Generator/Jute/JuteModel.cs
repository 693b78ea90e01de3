using System.Collections.Generic;

namespace Samsa.Protocol.Generator.Jute;

/// <summary>A jute field type: a primitive name, a class reference, or vector&lt;T&gt;.</summary>
internal sealed class JuteType
{
    public JuteType(string name, JuteType? element)
    {
        Name = name;
        Element = element;
    }

    /// <summary>"int", "long", "boolean", "buffer", "ustring", "vector", or a (possibly
    /// module-qualified) class name.</summary>
    public string Name { get; }
    public JuteType? Element { get; }

    public bool IsVector => Name == "vector";
    public bool IsPrimitive => Name is "int" or "long" or "boolean" or "buffer" or "ustring" or "byte" or "float" or "double";

    /// <summary>The class name without its module, as used in the generated namespace.</summary>
    public string ClassName
    {
        get
        {
            int dot = Name.LastIndexOf('.');
            return dot < 0 ? Name : Name.Substring(dot + 1);
        }
    }
}

internal sealed class JuteField
{
    public JuteField(JuteType type, string name)
    {
        Type = type;
        Name = name;
    }

    public JuteType Type { get; }
    public string Name { get; }
}

internal sealed class JuteClass
{
    public JuteClass(string module, string name, List<JuteField> fields)
    {
        Module = module;
        Name = name;
        Fields = fields;
    }

    public string Module { get; }
    public string Name { get; }
    public List<JuteField> Fields { get; }
}
