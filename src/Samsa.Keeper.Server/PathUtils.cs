namespace Samsa.Keeper.Server;

/// <summary>Path rules of upstream PathUtils.validatePath; a violation is BadArguments.</summary>
public static class PathUtils
{
    public static bool IsValid(string? path, bool sequential = false)
    {
        if (path is null || path.Length == 0 || path[0] != '/') return false;
        if (path.Length == 1) return !sequential;
        if (path[^1] == '/' && !sequential) return false;
        char last = '/';
        for (int i = 1; i < path.Length; i++)
        {
            char c = path[i];
            if (c == 0) return false;
            if (c == '/' && last == '/') return false;
            if (c == '.' && last == '.')
            {
                // ".." as a whole component
                if (path[i - 2] == '/' && (i + 1 == path.Length || path[i + 1] == '/')) return false;
            }
            else if (c == '.')
            {
                if (path[i - 1] == '/' && (i + 1 == path.Length || path[i + 1] == '/')) return false;
            }
            else if ((c > '\u0000' && c <= '\u001f') || (c >= '\u007f' && c <= '\u009F')
                || (c >= '\ud800' && c <= '\uf8ff') || (c >= '\ufff0' && c <= '\uffff'))
            {
                return false;
            }
            last = c;
        }
        return true;
    }

    public static string Parent(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path.Substring(0, slash);
    }

    public static string ChildName(string path) => path.Substring(path.LastIndexOf('/') + 1);
}
