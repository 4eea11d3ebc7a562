using System.Text.RegularExpressions;

namespace MLNetQuant.UnitTests.Build;

/// <summary>Guards against the TorchSharp scalar temporaries that corrupted values at random (1 CI run in 7): the
/// one-argument <c>Tensor.add</c> creates an alpha Scalar the GC may finalize during the native call, and so does a
/// number passed where a Scalar is taken. The library's TorchSharp code must name <c>CachedScalars</c> instead.</summary>
[TestClass]
public sealed partial class ScalarTemporaryTests
{
    [GeneratedRegex(@"\.add_?\(")]
    private static partial Regex AddCall();

    [GeneratedRegex(@"\.(mul|div|add|clamp|clamp_min|clamp_max|pow|fill_|mul_|div_|add_)\(\s*-?[0-9]")]
    private static partial Regex LiteralScalar();

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLNetQuant.sln"))) return dir.FullName;
        Assert.Fail("MLNetQuant.sln not found above the test binaries.");
        return "";
    }

    // Whether the call opened at index `open` (just after its parenthesis) has one argument.
    private static bool SingleArgument(string line, int open)
    {
        var depth = 1;
        for (var i = open; i < line.Length && depth > 0; i++)
        {
            if (line[i] is '(' or '[' or '{') depth++;
            else if (line[i] is ')' or ']' or '}') depth--;
            else if (line[i] == ',' && depth == 1) return false;
        }
        return true;
    }

    [TestMethod]
    public void TorchSharpCode_PassesNoTemporaryScalars()
    {
        var root = RepositoryRoot();
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "Estimators"), "*.cs", SearchOption.AllDirectories)
                     .Concat(Directory.EnumerateFiles(Path.Combine(root, "UnitTests"), "*.cs", SearchOption.AllDirectories))
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.EndsWith(nameof(ScalarTemporaryTests) + ".cs")))
        {
            var lines = File.ReadAllLines(file);
            if (!lines.Any(l => l.Contains("TorchSharp"))) continue;
            for (var n = 0; n < lines.Length; n++)
            {
                var line = lines[n];
                if (line.TrimStart().StartsWith("//")) continue;
                var single = AddCall().Matches(line).Any(m => SingleArgument(line, m.Index + m.Length));
                if (single || LiteralScalar().IsMatch(line)) offenders.Add($"{Path.GetRelativePath(root, file)}:{n + 1}: {line.Trim()}");
            }
        }
        Assert.IsEmpty(offenders, "pass CachedScalars.One as add's alpha and CachedScalars.Of(v) for numbers:\n" + string.Join("\n", offenders));
    }
}
