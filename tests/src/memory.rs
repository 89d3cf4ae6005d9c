//! Where a desktop app's memory goes: the PSS of each process of a process group, read from
//! `/proc/PID/smaps` and grouped by what each mapping is (the process's own binary, WebKit, GL, GTK, glib,
//! fonts, other libraries, the brk heap, anonymous memory by kind, stacks, shared memory), so two runs can
//! be compared group by group.

use std::collections::BTreeMap;

/// The kind of a process of the app: the app itself (or the empty window), WebKit's web content process, its
/// network process. Groups are compared kind with kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The app's own process (the app, or the baseline's empty window).
    App,
    /// `WebKitWebProcess`: the page, its DOM and its JavaScript.
    Web,
    /// `WebKitNetworkProcess`.
    Network,
}

impl Kind {
    fn of(comm: &str) -> Kind {
        if comm.starts_with("WebKitWebProces") {
            Kind::Web
        } else if comm.starts_with("WebKitNetwork") {
            Kind::Network
        } else {
            Kind::App
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Web => "web",
            Kind::Network => "net",
        }
    }
}

/// Memory of every process in a process group (but the ones skipped): totals from `smaps_rollup`, PSS by
/// group from `smaps`. PSS splits shared pages among the processes that share them, so it is the fair sum;
/// RSS counts shared libraries once per process.
#[derive(Debug, Default)]
pub struct Memory {
    /// RSS, KiB, summed over the processes.
    pub rss_kib: u64,
    /// PSS, KiB, summed over the processes.
    pub pss_kib: u64,
    /// Per process: name, PSS KiB, of which anonymous KiB.
    pub each: Vec<(String, u64, u64)>,
    /// PSS KiB by process kind and group.
    pub groups: BTreeMap<(Kind, &'static str), u64>,
}

impl Memory {
    /// Every process whose process group is `pgid`, but those whose name `skip` accepts.
    pub fn of_group(pgid: u32, skip: impl Fn(&str) -> bool) -> Memory {
        let pgid = pgid.to_string();
        let mut m = Memory::default();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2) != Some(&pgid.as_str()) {
                continue;
            }
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let comm = comm.trim();
            if skip(comm) {
                continue;
            }
            let rollup = std::fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
            m.rss_kib += kib(&rollup, "Rss:");
            m.pss_kib += kib(&rollup, "Pss:");
            m.each.push((comm.to_string(), kib(&rollup, "Pss:"), kib(&rollup, "Pss_Anon:")));
            let exe = std::fs::read_link(entry.path().join("exe")).unwrap_or_default();
            let smaps = std::fs::read_to_string(entry.path().join("smaps")).unwrap_or_default();
            for (group, pss) in groups(&smaps, &exe.to_string_lossy()) {
                *m.groups.entry((Kind::of(comm), group)).or_default() += pss;
            }
        }
        m
    }

    /// PSS in MiB.
    pub fn mib(&self) -> f64 {
        self.pss_kib as f64 / 1024.0
    }

    /// The `n` groups that changed most from `base` (grew or shrank), kind with kind, and what the rest
    /// adds up to, in MiB:
    /// `+58.6 MiB: app binary +15.2, web anon +14.0, …; rest +1.3`.
    pub fn growth_over(&self, base: &Memory, n: usize) -> String {
        let mut keys: Vec<_> = self.groups.keys().chain(base.groups.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        let mut deltas: Vec<((Kind, &str), i64)> = keys
            .into_iter()
            .map(|k| {
                let now = self.groups.get(&k).copied().unwrap_or(0) as i64;
                (k, now - base.groups.get(&k).copied().unwrap_or(0) as i64)
            })
            .collect();
        deltas.sort_by_key(|(_, d)| std::cmp::Reverse(d.abs()));
        let top: Vec<String> = deltas
            .iter()
            .take(n)
            .map(|((kind, group), d)| format!("{} {group} {}", kind.label(), mib(*d)))
            .collect();
        let rest: i64 = deltas.iter().skip(n).map(|(_, d)| d).sum();
        let total = self.pss_kib as i64 - base.pss_kib as i64;
        format!("{} MiB: {}; rest {}", mib(total), top.join(", "), mib(rest))
    }

    /// The `n` largest groups of each process kind, in MiB: one line per kind.
    pub fn largest(&self, n: usize) -> Vec<String> {
        [Kind::App, Kind::Web, Kind::Network]
            .into_iter()
            .map(|kind| {
                let mut gs: Vec<(&str, u64)> =
                    self.groups.iter().filter(|((k, _), _)| *k == kind).map(|((_, g), p)| (*g, *p)).collect();
                gs.sort_by_key(|(_, p)| std::cmp::Reverse(*p));
                let total: u64 = gs.iter().map(|(_, p)| p).sum();
                let top: Vec<String> =
                    gs.iter().take(n).map(|(g, p)| format!("{g} {:.1}", *p as f64 / 1024.0)).collect();
                format!("{} {:.1} MiB: {}", kind.label(), total as f64 / 1024.0, top.join(", "))
            })
            .collect()
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let each: Vec<String> = self
            .each
            .iter()
            .map(|(name, pss, anon)| {
                format!("{name} {:.0} (anon {:.0})", *pss as f64 / 1024.0, *anon as f64 / 1024.0)
            })
            .collect();
        write!(
            f,
            "PSS {:.1} MiB (RSS {:.1} MiB; PSS MiB by process: {})",
            self.mib(),
            self.rss_kib as f64 / 1024.0,
            each.join(", ")
        )
    }
}

/// Signed KiB as signed MiB with one decimal.
fn mib(kib: i64) -> String {
    format!("{:+.1}", kib as f64 / 1024.0)
}

/// A `Name:   123 kB` field of an smaps block.
fn kib(block: &str, name: &str) -> u64 {
    block
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
}

/// One mapping of `smaps`: address range, permissions, path (empty for anonymous memory), PSS KiB.
#[derive(Debug)]
struct Mapping<'a> {
    start: u64,
    end: u64,
    perms: &'a str,
    path: &'a str,
    pss: u64,
}

fn mappings(smaps: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping<'_>> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let perms = words.next().unwrap_or("");
                // offset, device, inode; then the path, which may hold spaces.
                let path = line.splitn(6, char::is_whitespace).nth(5).unwrap_or("").trim();
                out.push(Mapping { start, end, perms, path, pss: 0 });
                continue;
            }
        }
        if first == "Pss:" {
            if let Some(m) = out.last_mut() {
                m.pss = words.next().and_then(|kb| kb.parse().ok()).unwrap_or(0);
            }
        }
    }
    out
}

/// Contiguous anonymous memory this large (mostly reserved, not touched) is an allocator's reservation:
/// JavaScriptCore's gigacage and libpas/bmalloc heaps. glibc's malloc arenas reserve 64 MiB each.
const BIG_RESERVATION: u64 = 1 << 30;

/// Contiguous anonymous memory from this size up (and below [`BIG_RESERVATION`]) is told apart from the
/// small mappings (single large `malloc` blocks, image buffers).
const LARGE_RUN: u64 = 8 << 20;

/// glibc's malloc arenas (of threads other than the main one, which uses the brk heap): each reserves
/// 64 MiB, aligned to 64 MiB, read-write up to what it uses and PROT_NONE after.
const ARENA: u64 = 64 << 20;

/// A guard page this small (PROT_NONE) right below read-write anonymous memory marks a thread's stack.
const GUARD_MAX: u64 = 64 << 10;

/// PSS KiB of one process's `smaps`, by group; `exe` is the path of the process's executable.
fn groups(smaps: &str, exe: &str) -> BTreeMap<&'static str, u64> {
    let maps = mappings(smaps);
    // The virtual size of the run of contiguous anonymous mappings each mapping belongs to.
    let mut run_size = vec![0u64; maps.len()];
    let mut i = 0;
    while i < maps.len() {
        let mut j = i + 1;
        if maps[i].path.is_empty() {
            while j < maps.len() && maps[j].path.is_empty() && maps[j].start == maps[j - 1].end {
                j += 1;
            }
        }
        let size = maps[j - 1].end - maps[i].start;
        run_size[i..j].iter_mut().for_each(|s| *s = size);
        i = j;
    }
    let mut out = BTreeMap::new();
    for (i, m) in maps.iter().enumerate() {
        if m.pss == 0 {
            continue;
        }
        let group = if m.path.is_empty() {
            let guarded = i > 0 && {
                let p = &maps[i - 1];
                p.path.is_empty()
                    && p.end == m.start
                    && p.perms.starts_with("---")
                    && p.end - p.start <= GUARD_MAX
            };
            if guarded && m.perms.starts_with("rw") {
                "stacks"
            } else if m.perms.contains('x') {
                "anon executable (JIT code)"
            } else if run_size[i] >= BIG_RESERVATION {
                "anon in big reservations (JSC gigacage/libpas)"
            } else if in_arena(&maps, i) {
                "anon in malloc arenas"
            } else if run_size[i] >= LARGE_RUN {
                "anon mmap (runs ≥ 8 MiB)"
            } else {
                "anon mmap (small runs)"
            }
        } else {
            path_group(m.path, m.perms, exe)
        };
        *out.entry(group).or_default() += m.pss;
    }
    out
}

/// Whether anonymous mapping `i` starts a glibc malloc arena's heap.
fn in_arena(maps: &[Mapping<'_>], i: usize) -> bool {
    let m = &maps[i];
    let rest_reserved = maps.get(i + 1).is_some_and(|n| {
        n.path.is_empty() && n.start == m.end && n.perms.starts_with("---") && n.end - m.start == ARENA
    });
    m.start.is_multiple_of(ARENA) && (rest_reserved || m.end - m.start == ARENA)
}

/// The group of a named mapping.
fn path_group(path: &str, perms: &str, exe: &str) -> &'static str {
    let path = path.trim_end_matches(" (deleted)");
    let file = path.rsplit('/').next().unwrap_or(path);
    let has = |words: &[&str]| words.iter().any(|w| file.starts_with(w));
    if !exe.is_empty() && path == exe {
        if perms.contains('x') {
            "binary text"
        } else {
            "binary data"
        }
    } else if path == "[heap]" {
        "brk heap"
    } else if path.starts_with("[stack") {
        "stacks"
    } else if path.starts_with("/memfd:") || path.starts_with("/dev/shm/") || path.starts_with("/SYSV") {
        "shared memory"
    } else if path.starts_with("/dev/dri") {
        "gpu"
    } else if path.starts_with('[') {
        "other"
    } else if has(&["libwebkit2gtk", "libjavascriptcoregtk"]) {
        "webkit+jsc libs"
    } else if has(&["libLLVM", "libz3", "libGL", "libEGL", "libepoxy", "libgbm", "libdrm", "libgallium"])
        || file.ends_with("_dri.so")
    {
        "gl/llvm libs"
    } else if has(&["libgtk", "libgdk"]) {
        "gtk libs"
    } else if has(&["libglib", "libgio", "libgobject", "libgmodule"]) {
        "glib libs"
    } else if [".ttf", ".otf", ".ttc", ".pcf", ".woff", ".woff2"].iter().any(|e| file.ends_with(e))
        || path.contains("/fontconfig/")
        || has(&["libfontconfig", "libfreetype", "libharfbuzz", "libpango", "libcairo"])
    {
        "fonts+text libs"
    } else if has(&["libicu"]) || path.contains("/icu") {
        "icu"
    } else if path.contains(".so") {
        "other libs"
    } else {
        "other files"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600-5700 r-xp 00000000 fe:00 1 /opt/app
Pss: 100 kB
5700-5800 rw-p 00000000 fe:00 1 /opt/app
Pss: 10 kB
6000-7000 rw-p 00000000 00:00 0 [heap]
Pss: 50 kB
7000-7001 ---p 00000000 00:00 0
Pss: 0 kB
7001-7100 rw-p 00000000 00:00 0
Pss: 8 kB
8000-8100 rw-p 00000000 00:00 0
Pss: 20 kB
9000-50000000 ---p 00000000 00:00 0
Pss: 0 kB
50000000-50001000 rw-p 00000000 00:00 0
Pss: 30 kB
7c000000-7c021000 rw-p 00000000 00:00 0
Pss: 5 kB
7c021000-80000000 ---p 00000000 00:00 0
Pss: 0 kB
a000-b000 rw-s 00000000 00:01 2 /memfd:WebKitSharedMemory (deleted)
Pss: 7 kB
c000-d000 r-xp 00000000 fe:00 3 /usr/lib/libwebkit2gtk-4.1.so.0
Pss: 40 kB
d000-e000 r--p 00000000 fe:00 4 /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
Pss: 3 kB
";

    #[test]
    fn mappings_fall_in_their_groups() {
        let g = groups(SMAPS, "/opt/app");
        let want: BTreeMap<&str, u64> = [
            ("binary text", 100),
            ("binary data", 10),
            ("brk heap", 50),
            ("stacks", 8),
            ("anon mmap (small runs)", 20),
            ("anon in malloc arenas", 5),
            ("anon in big reservations (JSC gigacage/libpas)", 30),
            ("shared memory", 7),
            ("webkit+jsc libs", 40),
            ("fonts+text libs", 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(g, want);
    }

    #[test]
    fn growth_is_kind_with_kind() {
        let mut base = Memory { pss_kib: 3072, ..Memory::default() };
        base.groups.insert((Kind::App, "brk heap"), 1024);
        base.groups.insert((Kind::Web, "brk heap"), 2048);
        let mut now = Memory { pss_kib: 6144, ..Memory::default() };
        now.groups.insert((Kind::App, "brk heap"), 1024);
        now.groups.insert((Kind::Web, "brk heap"), 4096);
        now.groups.insert((Kind::App, "binary text"), 1024);
        assert_eq!(now.growth_over(&base, 1), "+3.0 MiB: web brk heap +2.0; rest +1.0");
        assert_eq!(base.growth_over(&now, 1), "-3.0 MiB: web brk heap -2.0; rest -1.0");
    }
}
