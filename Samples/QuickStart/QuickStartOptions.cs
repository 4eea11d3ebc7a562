namespace MLNetQuant.Samples.QuickStart;

/// <summary>Command-line options of the quick start; every one has a default that runs in under a minute on 2 cores.</summary>
internal sealed record QuickStartOptions(int TrainRows, int TestRows, int Epochs, int BatchSize, int Seed, string Output)
{
    private const string Usage =
        "usage: QuickStart [--full] [--train ROWS] [--test ROWS] [--epochs N] [--batch-size N] [--seed N] [--out DIR]\n" +
        "  defaults: 6000 training rows (or all of the bundled slice), 2000 test rows, 1 float epoch + 1 QAT epoch,\n" +
        "  batch 64, seed 0, the model .zip written to the current directory;\n" +
        "  --full uses all 60000/10000 rows of Debian's dataset-fashion-mnist.";

    /// <summary>Parses the arguments; prints the usage and returns null when they are wrong.</summary>
    public static QuickStartOptions? Parse(string[] args)
    {
        var options = new QuickStartOptions(6_000, 2_000, 1, 64, 0, Environment.CurrentDirectory);
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            try
            {
                options = args[i] switch
                {
                    "--full" => options with { TrainRows = 60_000, TestRows = 10_000 },
                    "--train" => options with { TrainRows = Positive(Next(), "--train") },
                    "--test" => options with { TestRows = Positive(Next(), "--test") },
                    "--epochs" => options with { Epochs = Positive(Next(), "--epochs") },
                    "--batch-size" => options with { BatchSize = Positive(Next(), "--batch-size") },
                    "--seed" => options with { Seed = int.Parse(Next()) },
                    "--out" => options with { Output = Next() },
                    "-h" or "--help" => throw new ArgumentException(""),
                    _ => throw new ArgumentException($"unknown option {args[i]}."),
                };
            }
            catch (Exception e) when (e is ArgumentException or FormatException)
            {
                if (e.Message.Length > 0) Console.Error.WriteLine(e.Message);
                Console.Error.WriteLine(Usage);
                return null;
            }
        }
        return options;
    }

    private static int Positive(string value, string option)
    {
        var parsed = int.Parse(value);
        return parsed > 0 ? parsed : throw new ArgumentException($"{option} must be positive.");
    }
}
