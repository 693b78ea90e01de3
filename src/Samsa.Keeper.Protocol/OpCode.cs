namespace Samsa.Keeper.Protocol;

/// <summary>Request types (upstream ZooDefs.OpCode), shared by the Keeper and its client. The same numbers
/// tag txns in the log.</summary>
public static class OpCode
{
    public const int Notification = 0;
    public const int Create = 1;
    public const int Delete = 2;
    public const int Exists = 3;
    public const int GetData = 4;
    public const int SetData = 5;
    public const int GetACL = 6;
    public const int SetACL = 7;
    public const int GetChildren = 8;
    public const int Sync = 9;
    public const int Ping = 11;
    public const int GetChildren2 = 12;
    public const int Check = 13;
    public const int Multi = 14;
    public const int Create2 = 15;
    public const int Reconfig = 16;
    public const int CheckWatches = 17;
    public const int RemoveWatches = 18;
    public const int CreateContainer = 19;
    public const int DeleteContainer = 20;
    public const int CreateTTL = 21;
    public const int MultiRead = 22;
    public const int Auth = 100;
    public const int SetWatches = 101;
    public const int Sasl = 102;
    public const int GetEphemerals = 103;
    public const int GetAllChildrenNumber = 104;
    public const int SetWatches2 = 105;
    public const int AddWatch = 106;
    public const int WhoAmI = 107;
    public const int CreateSession = -10;
    public const int CloseSession = -11;
    public const int Error = -1;

    /// <summary>Upstream Request.isValid: the types a client may send.</summary>
    public static bool IsValidClientRequest(int type) => type switch
    {
        Notification => false,
        Check or CloseSession or Create or Create2 or CreateTTL or CreateContainer or CreateSession
            or Delete or DeleteContainer or Exists or GetACL or GetChildren or GetAllChildrenNumber
            or GetChildren2 or GetData or GetEphemerals or Multi or MultiRead or Ping or Reconfig
            or SetACL or SetData or SetWatches or SetWatches2 or Sync or CheckWatches
            or RemoveWatches or AddWatch or WhoAmI or Auth or Sasl => true,
        _ => false,
    };
}
