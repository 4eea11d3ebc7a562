using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Transforms.Onnx;

namespace MLNetQuant.Text;

/// <summary>The BERT tokenizer step of a text pipeline (<c>ml.Quantization().TokenizeText(...)</c>): a text column in,
/// <see cref="InputIdsColumn"/>, <see cref="AttentionMaskColumn"/> and <see cref="TokenTypeIdsColumn"/> out (Int64
/// vectors of maxTokens: [CLS] text [SEP], truncated before [SEP], zero-padded, mask 0 on padding) — the columns a
/// BERT-family ONNX model reads.</summary>
/// <remarks>The step is ML.NET's own <see cref="OnnxScoringEstimator"/> over a small ONNX model that runs ONNX Runtime
/// Extensions' <c>BertTokenizer</c> operator (Hugging Face's BertTokenizer rules) with the vocabulary inside the model.
/// So it is saved in the ML.NET .zip with the embedder after it, and production loads the whole text pipeline with
/// Microsoft.ML, Microsoft.ML.OnnxTransformer, ONNX Runtime and Microsoft.ML.OnnxRuntime.Extensions — no MLNetQuant —
/// after registering the extensions' operators on the context (see <see cref="OnnxInference.UseOrtExtensions"/> for the
/// two lines). Microsoft.ML.Tokenizers' BertTokenizer was the first choice but it cannot be saved in a .zip (ML.NET
/// loads only its own components) and, in 2.0.1, splits differently from Hugging Face's rules on ASCII symbols such as
/// '_' and '+' and keeps accents that lower-casing models strip (5 of 300 .NET documentation sentences differ).</remarks>
public static class TextTokenizer
{
    /// <summary>The Int64 column of token ids.</summary>
    public const string InputIdsColumn = "input_ids";

    /// <summary>The Int64 column that is 1 on tokens and 0 on padding.</summary>
    public const string AttentionMaskColumn = "attention_mask";

    /// <summary>The Int64 column of segment ids (all 0: one sentence per row).</summary>
    public const string TokenTypeIdsColumn = "token_type_ids";

    // The three columns the step writes, in the order it writes them.
    internal static readonly string[] TokenColumns = { InputIdsColumn, AttentionMaskColumn, TokenTypeIdsColumn };

    /// <summary>The largest <c>maxTokens</c>: BERT-family models have at most 512 positions; 8192 leaves room for longer ones.</summary>
    public const int MaxTokensLimit = 8192;

    /// <summary>The tokenizer step over a vocabulary file (one WordPiece token per line; line i is id i). Registers ONNX
    /// Runtime Extensions' operators on <paramref name="ml"/> (<see cref="OnnxInference.UseOrtExtensions"/>).</summary>
    /// <param name="ml">The context of the pipeline.</param>
    /// <param name="vocabularyPath">The model's vocab.txt.</param>
    /// <param name="inputColumnName">The text column.</param>
    /// <param name="maxTokens">Tokens per row with [CLS] and [SEP]; the ONNX model's sequence length (e.g. 128).</param>
    /// <param name="lowerCase">Lower-case and strip accents before WordPiece (true for uncased models such as all-MiniLM-L6-v2).</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="vocabularyPath"/>.</exception>
    /// <exception cref="ArgumentException">A vocabulary without [CLS]/[SEP]/[UNK]/[PAD], or an empty or token-column name
    /// for the text column.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxTokens"/> below 2 or above <see cref="MaxTokensLimit"/>.</exception>
    public static OnnxScoringEstimator Create(MLContext ml, string vocabularyPath, string inputColumnName = "Text", int maxTokens = 128, bool lowerCase = true)
    {
        ArgumentNullException.ThrowIfNull(ml);
        var vocabulary = ReadVocabulary(vocabularyPath, inputColumnName, maxTokens, (nameof(vocabularyPath), nameof(inputColumnName), nameof(maxTokens)));
        var model = BertTokenizerGraph.Build(vocabulary, maxTokens, lowerCase, inputColumnName, (InputIdsColumn, AttentionMaskColumn, TokenTypeIdsColumn));
        OnnxInference.UseOrtExtensions(ml);
        // OnnxTransformer reads its model from a file (and copies the bytes into the .zip on save); one file per distinct
        // tokenizer, named by its content, so repeated pipelines share it and nothing is rewritten under a running one.
        return ml.Transforms.ApplyOnnxModel(TokenColumns, new[] { inputColumnName }, CachedFile(model), shapeDictionary: null, gpuDeviceId: null, fallbackToCpu: false);
    }

    /// <summary>Checks a tokenizer's vocabulary file, text column and token count, and returns the vocabulary's content.
    /// Errors name the arguments as <paramref name="names"/> gives them (the catalog's parameters, or an options
    /// class's properties), with <paramref name="paramName"/> as the exceptions' parameter (null: each one's name).</summary>
    /// <exception cref="FileNotFoundException">No vocabulary file.</exception>
    /// <exception cref="ArgumentException">A vocabulary without [CLS]/[SEP]/[UNK]/[PAD], or an empty or token-column name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token count below 2 or above <see cref="MaxTokensLimit"/>.</exception>
    internal static string ReadVocabulary(string vocabularyPath, string inputColumnName, int maxTokens,
        (string Vocabulary, string Column, string MaxTokens) names, string? paramName = null)
    {
        ArgumentNullException.ThrowIfNull(vocabularyPath, paramName ?? names.Vocabulary);
        if (!File.Exists(vocabularyPath)) throw new FileNotFoundException($"No vocabulary at '{vocabularyPath}' ({names.Vocabulary}).", vocabularyPath);
        if (maxTokens is < 2 or > MaxTokensLimit)
            throw new ArgumentOutOfRangeException(paramName ?? names.MaxTokens, maxTokens, $"{names.MaxTokens} must hold [CLS] and [SEP]: 2 to {MaxTokensLimit}.");
        if (string.IsNullOrWhiteSpace(inputColumnName) || TokenColumns.Contains(inputColumnName))
            throw new ArgumentException($"{names.Column} must name a text column other than the token columns ({string.Join(", ", TokenColumns)}).",
                paramName ?? names.Column);
        var vocabulary = File.ReadAllText(vocabularyPath);
        var tokens = vocabulary.Split('\n').Select(line => line.TrimEnd('\r')).ToHashSet(StringComparer.Ordinal);
        var missing = new[] { "[CLS]", "[SEP]", "[UNK]", "[PAD]" }.Where(t => !tokens.Contains(t)).ToArray();
        if (missing.Length > 0)
            throw new ArgumentException($"'{vocabularyPath}' is not a BERT WordPiece vocabulary: it lacks {string.Join(", ", missing)}.",
                paramName ?? names.Vocabulary);
        return vocabulary;
    }

    private static string CachedFile(byte[] model)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-tokenizer-{Convert.ToHexString(SHA256.HashData(model))[..24].ToLowerInvariant()}.onnx");
        if (File.Exists(path) && new FileInfo(path).Length == model.Length) return path;
        var temporary = $"{path}.{Guid.NewGuid():N}.partial"; // concurrent first writers each write their own copy
        File.WriteAllBytes(temporary, model);
        File.Move(temporary, path, overwrite: true);
        return path;
    }
}
