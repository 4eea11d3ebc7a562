// Marks one ELF symbol-version requirement (an entry of .gnu.version_r) as weak, so that the dynamic loader accepts a
// shared library even when the named version is missing from the host's library.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so requires GLIBCXX_3.4.32 (GCC 13) for one symbol,
// _ZSt21ios_base_library_initv, that it references but never calls. Debian 12 and Ubuntu 22.04 ship GLIBCXX_3.4.30,
// so the library fails to load there. Setting VER_FLG_WEAK on that one Vernaux entry makes glibc's loader skip the
// version check (dl-version.c treats a missing weak version as non-fatal) while every other requirement is kept.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory as the build task (see
// MLNetQuant.TorchSharpNativeFix.targets), and by the unit tests with MLNETQUANT_ELF_PATCHER_ONLY defined, which
// drops the MSBuild task class so the pure logic can be tested without MSBuild assemblies.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace MLNetQuant.Build
{
    /// <summary>Outcome of <see cref="ElfVersionRequirement.MakeWeak"/>.</summary>
    public enum WeakenResult
    {
        /// <summary>The requirement was found and its weak flag was set now.</summary>
        Patched,
        /// <summary>The requirement was found and was already weak.</summary>
        AlreadyWeak,
        /// <summary>The file does not require that version.</summary>
        NotRequired,
    }

    /// <summary>Reads and edits the symbol-version requirements of a 64-bit little-endian ELF file.</summary>
    public static class ElfVersionRequirement
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlagWeak = 0x2;

        /// <summary>Version names required by the file, with their weak flag, as (library, version, weak).</summary>
        public static List<(string Library, string Version, bool Weak)> List(string path)
        {
            var result = new List<(string, string, bool)>();
            var bytes = File.ReadAllBytes(path);
            ForEachRequirement(bytes, path, (library, version, flagsOffset) =>
                result.Add((library, version, (ReadU16(bytes, flagsOffset) & VerFlagWeak) != 0)));
            return result;
        }

        /// <summary>Sets the weak flag on every requirement of <paramref name="versionName"/> in the file at
        /// <paramref name="path"/>, rewriting only the two flag bytes of each entry.</summary>
        public static WeakenResult MakeWeak(string path, string versionName)
        {
            var bytes = File.ReadAllBytes(path);
            var flagOffsets = new List<long>();
            var alreadyWeak = false;
            ForEachRequirement(bytes, path, (_, version, flagsOffset) =>
            {
                if (version != versionName) return;
                if ((ReadU16(bytes, flagsOffset) & VerFlagWeak) != 0) alreadyWeak = true;
                else flagOffsets.Add(flagsOffset);
            });
            if (flagOffsets.Count == 0) return alreadyWeak ? WeakenResult.AlreadyWeak : WeakenResult.NotRequired;

            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                foreach (var offset in flagOffsets)
                {
                    var flags = (ushort)(ReadU16(bytes, offset) | VerFlagWeak);
                    stream.Position = offset;
                    stream.WriteByte((byte)(flags & 0xff));
                    stream.WriteByte((byte)(flags >> 8));
                }
            }
            return WeakenResult.Patched;
        }

        /// <summary>True when the shared library at <paramref name="path"/> contains the version string
        /// <paramref name="versionName"/> (a library like libstdc++ names only versions it defines or needs; libstdc++
        /// needs none of its own GLIBCXX versions, so presence means "defined").</summary>
        public static bool MentionsVersion(string path, string versionName)
        {
            var needle = Encoding.ASCII.GetBytes(versionName + "\0");
            var haystack = File.ReadAllBytes(path);
            for (var i = 0; i + needle.Length <= haystack.Length; i++)
            {
                // Require a NUL (or the start) before the name so GLIBCXX_3.4.3 does not match GLIBCXX_3.4.32's tail.
                if (i > 0 && haystack[i - 1] != 0) continue;
                var match = true;
                for (var j = 0; j < needle.Length && match; j++) match = haystack[i + j] == needle[j];
                if (match) return true;
            }
            return false;
        }

        private static void ForEachRequirement(byte[] elf, string path, Action<string, string, long> visit)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException($"'{path}' is not an ELF file.");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"'{path}' is not a 64-bit little-endian ELF file.");

            var sectionHeaderOffset = (long)ReadU64(elf, 0x28);
            var sectionHeaderSize = ReadU16(elf, 0x3a);
            var sectionCount = ReadU16(elf, 0x3c);
            for (var s = 0; s < sectionCount; s++)
            {
                var header = sectionHeaderOffset + (long)s * sectionHeaderSize;
                if (ReadU32(elf, header + 4) != ShtGnuVerneed) continue;

                var verneedOffset = (long)ReadU64(elf, header + 0x18);
                var link = ReadU32(elf, header + 0x28);
                var stringsOffset = (long)ReadU64(elf, sectionHeaderOffset + (long)link * sectionHeaderSize + 0x18);

                var entry = verneedOffset;
                while (true)
                {
                    // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
                    var count = ReadU16(elf, entry + 2);
                    var library = ReadString(elf, stringsOffset + ReadU32(elf, entry + 4));
                    var aux = entry + ReadU32(elf, entry + 8);
                    for (var a = 0; a < count; a++)
                    {
                        // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
                        visit(library, ReadString(elf, stringsOffset + ReadU32(elf, aux + 8)), aux + 4);
                        var nextAux = ReadU32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    var next = ReadU32(elf, entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
        }

        private static ushort ReadU16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        private static uint ReadU32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        private static ulong ReadU64(byte[] b, long o) => ReadU32(b, o) | (ulong)ReadU32(b, o + 4) << 32;

        private static string ReadString(byte[] b, long o)
        {
            var end = o;
            while (b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
        }
    }

    /// <summary>Finds the libstdc++ that the dynamic loader would pick on this host.</summary>
    public static class HostLibStdCxx
    {
        private static readonly string[] StandardDirectories =
        {
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib64", "/usr/local/lib",
        };

        /// <summary>The path of libstdc++.so.6 (LD_LIBRARY_PATH first, then the standard directories), or null.</summary>
        public static string? Locate()
        {
            var searchPath = new List<string>();
            var ldLibraryPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ldLibraryPath)) searchPath.AddRange(ldLibraryPath!.Split(':'));
            searchPath.AddRange(StandardDirectories);
            foreach (var directory in searchPath)
            {
                if (directory.Length == 0) continue;
                var candidate = Path.Combine(directory, "libstdc++.so.6");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }
    }
}

#if !MLNETQUANT_ELF_PATCHER_ONLY
namespace MLNetQuant.Build
{
    /// <summary>MSBuild task: weakens <see cref="VersionName"/> in each of <see cref="Files"/> that exists, but only when
    /// the host's libstdc++ lacks that version (elsewhere the files are left byte-for-byte untouched).</summary>
    public sealed class WeakenElfVersionRequirement : Microsoft.Build.Utilities.Task
    {
        /// <summary>Shared libraries to patch; missing ones are skipped.</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>The version requirement to weaken, e.g. GLIBCXX_3.4.32.</summary>
        [Microsoft.Build.Framework.Required]
        public string VersionName { get; set; } = "";

        /// <inheritdoc />
        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux))
                return true;

            var libStdCxx = HostLibStdCxx.Locate();
            if (libStdCxx != null && ElfVersionRequirement.MentionsVersion(libStdCxx, VersionName))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    $"{libStdCxx} defines {VersionName}: TorchSharp's native library needs no patch.");
                return true;
            }

            foreach (var item in Files)
            {
                var path = item.GetMetadata("FullPath");
                if (!File.Exists(path)) continue;
                try
                {
                    var result = ElfVersionRequirement.MakeWeak(path, VersionName);
                    if (result == WeakenResult.Patched)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                            $"Marked the {VersionName} requirement of {path} weak (host libstdc++: {libStdCxx ?? "not found"}).");
                }
                catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
                {
                    Log.LogError($"Could not patch {path} for {VersionName}: {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
}
#endif
