using System.Globalization;

namespace MLNetQuant.Samples.Shared;

/// <summary>The samples' tiny command-line parsing: <c>--name value</c> pairs.</summary>
public static class SampleArguments
{
    /// <summary>The positive integer after <paramref name="name"/>, or <paramref name="fallback"/> when the option is
    /// absent.</summary>
    /// <exception cref="ArgumentException">The option is present without a positive integer; the message names it.</exception>
    public static int PositiveInt(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        if (i < 0) return fallback;
        return i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new ArgumentException($"{name} needs a positive number.");
    }
}
