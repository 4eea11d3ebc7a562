using System.Text.Json;

namespace MLNetQuant.Benchmarks;

/// <summary>Writes one run's result as indented JSON to <c>&lt;folder&gt;/&lt;name&gt;.json</c> (Benchmarks/results).</summary>
internal static class ResultFile
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly JsonSerializerOptions SnakeCase = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Writes <paramref name="result"/>; <paramref name="snakeCase"/> names its fields speedup_vs_float,
    /// size_ratio … where an issue asks for those names.</summary>
    public static void Write<T>(string folder, string name, T result, bool snakeCase = false) =>
        File.WriteAllText(Path.Combine(folder, $"{name}.json"), JsonSerializer.Serialize(result, snakeCase ? SnakeCase : Indented));
}
