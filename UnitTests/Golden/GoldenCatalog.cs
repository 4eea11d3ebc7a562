using System.Text.Json;

namespace MLNetQuant.UnitTests.Golden;

/// <summary>Finds and loads the golden files: every *.json in the folder named by MLNETQUANT_GOLDEN_DIR, or else in
/// the nearest shared/golden above the test binaries (the repository's ../shared/golden).</summary>
internal static class GoldenCatalog
{
    public const string DirectoryVariable = "MLNETQUANT_GOLDEN_DIR";

    private static readonly Lazy<IReadOnlyList<GoldenCase>> AllCases = new(Load);

    public static IReadOnlyList<GoldenCase> Cases => AllCases.Value;

    public static string Directory
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable(DirectoryVariable);
            if (!string.IsNullOrWhiteSpace(configured))
            {
                if (!System.IO.Directory.Exists(configured))
                    throw new DirectoryNotFoundException($"{DirectoryVariable} names '{configured}', which does not exist.");
                return configured;
            }
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "golden");
                if (System.IO.Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException(
                $"No golden folder: set {DirectoryVariable} or place shared/golden beside the repository.");
        }
    }

    private static IReadOnlyList<GoldenCase> Load()
    {
        var cases = new List<GoldenCase>();
        foreach (var path in System.IO.Directory.GetFiles(Directory, "*.json").OrderBy(p => p, StringComparer.Ordinal))
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var root = document.RootElement.Clone();
            var category = root.GetProperty("category").GetString()!;
            foreach (var c in root.GetProperty("cases").EnumerateArray())
                cases.Add(new GoldenCase(Path.GetFileName(path), category, c.GetProperty("id").GetString()!, c));
        }
        return cases;
    }

    public static GoldenCase Find(string file, string id) =>
        Cases.Single(c => c.File == file && c.Id == id);
}
