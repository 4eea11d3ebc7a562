using System.Text.Json;

namespace MLNetQuant.Benchmarks;

/// <summary>Writes one run's result as indented JSON to <c>&lt;folder&gt;/&lt;name&gt;.json</c> (Benchmarks/results).</summary>
internal static class ResultFile
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Write<T>(string folder, string name, T result) =>
        File.WriteAllText(Path.Combine(folder, $"{name}.json"), JsonSerializer.Serialize(result, Indented));
}
