namespace Samsa.Host.Admin;

/// <summary>
/// The admin subcommands of <c>samsa</c>: upstream's kafka-topics.sh, kafka-consumer-groups.sh,
/// kafka-configs.sh, kafka-acls.sh and zkCli.sh, with their option names and output, against any
/// Kafka or ZooKeeper (Samsa's or upstream's) and without a JVM.
/// </summary>
public static class AdminCommands
{
    /// <summary>Runs one admin command writing to the process's stdout and stderr; returns the exit code.</summary>
    public static Task<int> RunAsync(string command, string[] args) =>
        RunAsync(command, args, Console.Out, Console.Error, Console.In);

    /// <summary>Runs one admin command with the given streams (tests capture them).</summary>
    public static async Task<int> RunAsync(string command, string[] args, TextWriter output, TextWriter error, TextReader input)
    {
        try
        {
            return command switch
            {
                "kafka-topics" => await TopicsCommand.RunAsync(args, output),
                "kafka-consumer-groups" => await ConsumerGroupsCommand.RunAsync(args, output, error),
                "kafka-configs" => await ConfigsCommand.RunAsync(args, output, error),
                "kafka-acls" => await AclsCommand.RunAsync(args, output, input),
                "zkcli" => await ZkCliCommand.RunAsync(args, output, error, input),
                _ => throw new UsageException($"unknown admin command '{command}'"),
            };
        }
        catch (UsageException e)
        {
            // Upstream's tools print the problem and their usage, and exit 1.
            error.WriteLine(e.Message);
            error.Write(command switch
            {
                "kafka-topics" => TopicsCommand.Usage,
                "kafka-consumer-groups" => ConsumerGroupsCommand.Usage,
                "kafka-configs" => ConfigsCommand.Usage,
                "kafka-acls" => AclsCommand.Usage,
                _ => ZkCliCommand.Usage,
            });
            return 1;
        }
        catch (Samsa.Kafka.Broker.Config.ConfigValueException e)
        {
            error.WriteLine($"{command}: --command-config: {e.Message}");
            return 1;
        }
        catch (Samsa.Kafka.Broker.Security.Sasl.SaslAuthenticationException e)
        {
            error.WriteLine($"{command}: authentication failed: {e.Message}");
            return 1;
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            error.WriteLine($"{command}: TLS handshake failed: {e.Message}");
            return 1;
        }
        finally
        {
            output.Flush();
            error.Flush();
        }
    }
}
