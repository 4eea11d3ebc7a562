using System.Diagnostics;

namespace MLNetQuant.UnitTests.Samples;

/// <summary>Runs a sample's built program (built beside the tests through a project reference) as a child process.</summary>
internal static class SampleRunner
{
    /// <summary>Runs Samples/<paramref name="name"/> with <paramref name="arguments"/>; returns exit code and output.</summary>
    public static (int ExitCode, string Output) Run(string name, string arguments, TimeSpan timeout) =>
        RunProject(Path.Combine("Samples", name), name, arguments, timeout);

    /// <summary>The folder a project under the repository root builds to, in the tests' configuration.</summary>
    public static string OutputDirectory(string projectDirectory)
    {
        var testDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var repository = testDir.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(repository, projectDirectory, "bin", testDir.Parent.Name, testDir.Name);
    }

    /// <summary>Runs the program built from <paramref name="projectDirectory"/> (relative to the repository root).</summary>
    public static (int ExitCode, string Output) RunProject(string projectDirectory, string name, string arguments, TimeSpan timeout)
    {
        // The tests run from <repo>/UnitTests/bin/<Configuration>/<tfm>/; the program is built to the same layout.
        var program = Path.Combine(OutputDirectory(projectDirectory), $"{name}.dll");
        Assert.IsTrue(File.Exists(program), $"the sample should have been built to {program}");

        var start = new ProcessStartInfo("dotnet", $"\"{program}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(program)!,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{name} did not finish within {timeout}.");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
