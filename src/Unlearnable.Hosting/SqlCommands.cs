using System.Data.Common;

namespace Unlearnable.Hosting;

/// <summary>Parameterised commands on any ADO.NET provider, so one store class serves SQLite and PostgreSQL alike.</summary>
public static class SqlCommands
{
    public static DbCommand Command(this DbConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    /// <summary>A command within <paramref name="transaction"/>, on its connection (providers such as SQLite require the command to name it).</summary>
    public static DbCommand Command(this DbTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = transaction.Connection!.Command(sql, parameters);
        command.Transaction = transaction;
        return command;
    }
}
